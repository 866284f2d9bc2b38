import {mkdtemp, rm, stat, writeFile} from 'node:fs/promises'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'

import {H2KError, type SandboxView} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {launchArgv} from '../exec/launch-argv.js'
import {type Accel, type BootBus, type BootDisk, type Firmware, type MachineType, QEMU_SYSTEM, bootCheckArgs} from './boot-args.js'
import {type BootReason, judgeLine} from './boot-verdict.js'
import {prepareOvmf} from './ovmf-firmware.js'
import {type QemuExit, type RunningQemu, startQemu} from './qemu-process.js'
import {SerialTail} from './serial-tail.js'

export interface BootCheckOptions {
  /**
   * Boot disk first. Opened in snapshot mode: the check never modifies them. `files`: other host files the
   * image opens by itself (a qcow2 overlay's backing file), which the sandbox must show qemu too.
   */
  disks: ReadonlyArray<{path: string; format: string; files?: readonly string[]}>
  firmware: Firmware
  accel: Accel
  timeoutSeconds: number
  /** Passes the boot when a console line matches; default: a getty login prompt. */
  passPattern?: RegExp
  /** Where the guest's serial console is written (truncated first); kept for the user to read. */
  serialLog: string
  signal?: AbortSignal
  memoryMiB?: number
  cpus?: number
  /** Default virtio (what the converted guest must boot on); sata proves the unconverted source boots at all. */
  bus?: BootBus
  /** Default q35 for both firmwares (the machine the libvirt domain has); pc (i440FX) when asked for. */
  machine?: MachineType
  /**
   * The NIC: virtio-net-pci on qemu's user network with restrict=on (the guest reaches nothing, but gets its
   * DHCP address from slirp), with `mac` when given (the MAC the domain keeps). Default: a NIC with qemu's
   * MAC. false: no NIC (the VM has none).
   */
  nic?: {mac?: string} | false
  /** Called about once a second while the guest boots. */
  onProgress?: (seconds: number, lastLine?: string) => void
  /** How often the serial log is read (ms). */
  pollMs?: number
  /**
   * Run qemu in the bubblewrap sandbox (default): it sees the disks, its firmware, the serial log and a
   * private work directory, nothing else. false: the job runs with --no-sandbox.
   */
  sandbox?: boolean
}

export interface BootResult {
  passed: boolean
  reason: BootReason
  seconds: number
  /** The console line that decided the result (pass pattern or failure sign). */
  matchedLine?: string
  /** The last 30 console lines. */
  serialTail: string[]
  accel: Accel
  firmware: Firmware
  bus: BootBus
  machine: MachineType
  /** The qemu argv that ran, program first. */
  command: string[]
  /** qemu's own last stderr lines, when it exited by itself. */
  qemuStderr?: string
}

interface Decision {
  passed: boolean
  reason: BootReason
  matchedLine?: string
  /** Seconds since qemu started when the decision was made. */
  at?: number
}

const TAIL_LINES = 30
/** After a failure sign, keep reading this long so the report shows the whole message (panic trace, shell banner). */
const FAILURE_SETTLE_MS = 1000
/**
 * q35 for both firmwares: the boot proves the VM the user runs, and the libvirt domain (--emit libvirt) is
 * q35, as libvirt and virt-v2v give new guests (secure-boot OVMF builds require it too). i440FX ("pc") stays
 * selectable. Measured on the TCG test guest, pc and q35 reach the login prompt equally fast (23-27 s).
 */
const DEFAULT_MACHINE: MachineType = 'q35'

interface Waker {
  /** Sleep `ms`, ending early when qemu exits or the job is cancelled, so neither waits for the next poll. */
  pause(ms: number): Promise<void>
  dispose(): void
}

function makeWaker(exited: Promise<unknown>, signal: AbortSignal | undefined): Waker {
  let wake: (() => void) | undefined
  const fire = (): void => wake?.()
  void exited.then(fire)
  signal?.addEventListener('abort', fire, {once: true})
  return {
    dispose: () => signal?.removeEventListener('abort', fire),
    pause: (ms) =>
      new Promise((resolve) => {
        const timer = setTimeout(fire, ms)
        wake = () => {
          clearTimeout(timer)
          wake = undefined
          resolve()
        }
      }),
  }
}

type CheckedDisk = BootDisk & {files?: readonly string[]}

async function describeDisks(disks: BootCheckOptions['disks']): Promise<CheckedDisk[]> {
  return Promise.all(
    disks.map(async (disk) => {
      try {
        const info = await stat(disk.path)
        return {...disk, blockDevice: info.isBlockDevice()}
      } catch (error) {
        throw mapForeignError(error, {path: disk.path, phase: 'verify'})
      }
    }),
  )
}

/**
 * What the boot test's qemu sees: the disks (read-only: snapshot=on sends guest writes to an overlay in
 * TMPDIR, our private work directory), the serial log and the work directory (OVMF variable copy) read-write,
 * /dev/kvm under KVM. The firmware it loads lives under /usr, which every sandbox has.
 */
function bootView(disks: readonly CheckedDisk[], accel: Accel, serialLog: string, workDir: string): SandboxView {
  const devices = disks.filter((disk) => disk.blockDevice).map((disk) => disk.path)
  return {
    devices: accel === 'kvm' ? ['/dev/kvm', ...devices] : devices,
    readOnly: disks.flatMap((disk) => [...(disk.blockDevice ? [] : [disk.path]), ...(disk.files ?? [])]),
    readWrite: [workDir, serialLog],
    tmpDir: workDir,
  }
}

/** A `g`/`y` flag makes RegExp.test stateful across lines; the pattern is meant per line. */
function statelessPattern(pattern: RegExp | undefined): RegExp | undefined {
  return pattern && (pattern.global || pattern.sticky) ? new RegExp(pattern.source, pattern.flags.replaceAll(/[gy]/g, '')) : pattern
}

function cancelled(): H2KError {
  return new H2KError('H2K_CANCELLED', 'The boot check was cancelled.', {phase: 'verify'})
}

/** qemu that exits non-zero before the guest printed anything failed to start the VM (bad image, no KVM...). */
function startFailure(exit: QemuExit, command: readonly string[]): H2KError {
  const why = exit.stderr || (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.exitCode ?? 'unknown'}`)
  return new H2KError('H2K_TOOL_FAILED', `${QEMU_SYSTEM} could not start the boot check: ${why}`, {
    phase: 'verify',
    details: {command, exitCode: exit.exitCode, signal: exit.signal, stderr: exit.stderr},
  })
}

/**
 * Boot the disks headless under qemu and watch the serial console: pass on a login prompt (or `passPattern`),
 * fail at once on a kernel panic, an initramfs or emergency shell, or missing boot device, else fail on
 * timeout. qemu is always stopped, and this resolves only after it has exited.
 */
export async function bootCheck(options: BootCheckOptions): Promise<BootResult> {
  if (!(options.timeoutSeconds > 0)) {
    throw new H2KError('H2K_USAGE', `The boot timeout must be a positive number of seconds, got ${options.timeoutSeconds}.`)
  }
  if (options.signal?.aborted) throw cancelled()
  const bus = options.bus ?? 'virtio'
  const machine = options.machine ?? DEFAULT_MACHINE
  const passPattern = statelessPattern(options.passPattern)
  const disks = await describeDisks(options.disks)
  const workDir = await mkdtemp(join(tmpdir(), 'h2k-boot-'))
  let qemu: RunningQemu | undefined
  let waker: Waker | undefined
  const tail = new SerialTail(options.serialLog, TAIL_LINES)
  try {
    const ovmf = options.firmware === 'efi' ? await prepareOvmf(workDir) : undefined
    const args = bootCheckArgs({
      accel: options.accel,
      bus,
      cpus: options.cpus ?? Math.min(2, availableParallelism()),
      disks,
      firmware: options.firmware,
      machine,
      memoryMiB: options.memoryMiB ?? 2048,
      nic: options.nic ?? {},
      ovmf,
      serialLog: options.serialLog,
    })
    // Truncate before qemu starts, so the tail can never read a previous run's console.
    await writeFile(options.serialLog, '')
    const launch = await launchArgv(QEMU_SYSTEM, args, {sandbox: options.sandbox !== false && bootView(disks, options.accel, options.serialLog, workDir)})
    const started = performance.now()
    const elapsed = (): number => (performance.now() - started) / 1000
    const running = startQemu(args, {launch: launch.argv})
    qemu = running
    waker = makeWaker(running.exited, options.signal)
    const pause = waker.pause
    const pollMs = options.pollMs ?? 250

    let verdict: Decision | undefined
    const judge = (line: string): void => {
      if (verdict || line.length === 0) return
      const seen = judgeLine(line, passPattern)
      if (seen) verdict = {...seen, at: elapsed(), matchedLine: line}
    }
    const finish = async ({at, ...decided}: Decision): Promise<BootResult> => {
      // The time the console decided, not including the settle delay or stopping qemu.
      const seconds = Math.round((at ?? elapsed()) * 10) / 10
      const exit = await running.stop()
      await tail.poll(() => {})
      const byItself = decided.reason === 'qemu-exited' && exit.stderr ? {qemuStderr: exit.stderr} : {}
      const command = [...running.command]
      return {...decided, accel: options.accel, bus, command, firmware: options.firmware, machine, seconds, serialTail: tail.lines, ...byItself}
    }

    let reported = -1
    for (;;) {
      await tail.poll(judge)
      judge(tail.pendingLine)
      if (verdict) {
        if (!verdict.passed) await pause(FAILURE_SETTLE_MS)
        return await finish(verdict)
      }
      if (options.signal?.aborted) throw cancelled()
      if (running.hasExited()) {
        const exit = await running.exited
        if (exit.startError) throw exit.startError
        const silent = tail.lines.length === 0
        if (silent && (exit.exitCode !== 0 || exit.signal)) throw startFailure(exit, running.command)
        return await finish({passed: false, reason: 'qemu-exited'})
      }
      const seconds = elapsed()
      if (seconds >= options.timeoutSeconds) return await finish({passed: false, reason: 'timeout'})
      if (options.onProgress && Math.floor(seconds) > reported) {
        reported = Math.floor(seconds)
        options.onProgress(reported, tail.lastLine)
      }
      await pause(pollMs)
    }
  } finally {
    // Every way out (verdict, timeout, cancel, error) stops qemu and waits for it before cleaning up.
    await qemu?.stop()
    waker?.dispose()
    await tail.close()
    await rm(workDir, {force: true, recursive: true})
  }
}
