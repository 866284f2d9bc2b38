import {type AccelPreference, formatNode, type GuestAccess, type GuestSession, H2KError, isBareFilesystemDisk, qemuFilename, type Source} from '@hyper2kvm/plugin-api'
import type {ChildRecords} from '../exec/child-records.js'
import {runTool} from '../exec/run-tool.js'
import {chooseAccel, libguestfsEnv} from './accel.js'
import {applianceShape} from './appliance-shape.js'
import {GuestfishSession} from './guestfish-session.js'
import {withShortPaths} from './source-links.js'

/** qcow2 stores its backing file name in at most 1023 bytes. */
const MAX_BACKING_NAME = 1023

export interface GuestAccessDeps {
  source: () => Source | undefined
  workDir: string
  signal: AbortSignal
  accel: AccelPreference
  warn: (code: string, message: string) => void
  report: (message: string) => void
  /** Where the appliance's processes are recorded for a later instance to reap (the daemon's state). */
  records?: ChildRecords
}

/**
 * The job's guest: created on first use. Each source disk gets a qcow2 overlay in the work directory
 * (backing: the source, format stated), one appliance is launched on the overlays, and the disks' specs
 * are switched to the overlays so CONVERT copies the fixed guest. The source is only ever a backing file,
 * which qemu opens read-only.
 */
export class JobGuestAccess implements GuestAccess {
  private opening: Promise<GuestfishSession> | undefined
  private session: GuestfishSession | undefined

  constructor(private readonly deps: GuestAccessDeps) {}

  get isOpen(): boolean {
    return this.session !== undefined
  }

  open(): Promise<GuestSession> {
    this.opening ??= this.launch()
    return this.opening
  }

  private async launch(): Promise<GuestfishSession> {
    const source = this.deps.source()
    if (!source) throw new H2KError('H2K_INTERNAL', 'The guest was opened before a source was loaded.')
    const drives: Array<{path: string; format: string}> = []
    for (const [index, disk] of source.disks.entries()) {
      const backing = await withShortPaths(disk.spec, this.deps.workDir, `d${index}-`)
      const backingName = qemuFilename(backing)
      if (backingName.length > MAX_BACKING_NAME) {
        throw new H2KError('H2K_INPUT_UNSUPPORTED', `The disk ${disk.label ?? index + 1} is described by a qemu spec too long for a qcow2 overlay (${backingName.length} bytes).`)
      }
      const overlay = `${this.deps.workDir}/overlay-${index}.qcow2`
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', backingName, '-F', backing.driver, overlay, String(disk.virtualSize ?? 0)], {signal: this.deps.signal})
      disk.spec = formatNode('qcow2', overlay, backing)
      drives.push({format: 'qcow2', path: overlay})
    }
    const accel = await chooseAccel({preference: this.deps.accel, signal: this.deps.signal})
    if (accel.accel === 'tcg' && this.deps.accel === 'auto') {
      this.deps.warn('GUEST_TCG_FALLBACK', `KVM is not usable here (${accel.reason}); the libguestfs appliance runs under TCG (slower). Set --accel tcg to skip the check.`)
    }
    this.deps.report(`starting the libguestfs appliance (${accel.accel})`)
    const env = libguestfsEnv(accel.accel)
    // Bare filesystems get no fix (no boot loader to make boot): read-only drives keep even the appliance
    // kernel's "read-only" XFS and btrfs mounts, which still write their superblocks, from changing the output.
    const readOnly = source.disks.every(isBareFilesystemDisk)
    const shape = applianceShape(accel.accel)
    this.session = await GuestfishSession.launch({...shape, drives, env, readOnly, records: this.deps.records, scratch: this.deps.workDir, signal: this.deps.signal})
    const {containment} = this.session
    if (containment.kind === 'none') {
      this.deps.warn('GUEST_NOT_CONTAINED', `The libguestfs appliance runs without its own PID namespace (${containment.reason}): if this process is killed, the appliance may keep running until stopped by hand or by the daemon's next start.`)
    }
    return this.session
  }

  /** Shut the appliance down (flushing the overlays) before anything reads them. */
  async close(): Promise<void> {
    const session = this.session ?? (await this.opening?.catch(() => undefined))
    await session?.close()
  }
}
