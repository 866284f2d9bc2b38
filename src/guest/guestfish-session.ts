import {readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type GuestSession, H2KError} from '@hyper2kvm/plugin-api'
import type {ChildRecords, RecordedChild} from '../exec/child-records.js'
import {descendants, isAlive, killTree, waitGone} from '../exec/kill-tree.js'
import {runTool} from '../exec/run-tool.js'
import {ApplianceNamespace} from './appliance-namespace.js'
import {applianceBuiltOutsideNamespace} from './supermin-appliance.js'

/** A PATH that finds the guest's own tools wherever the distribution keeps them. */
const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

export interface GuestfishLaunch {
  drives: Array<{path: string; format: string}>
  env: Record<string, string>
  /** Scratch directory for file transfers (the job's work directory). */
  scratch: string
  signal: AbortSignal
  memoryMiB?: number
  cpus?: number
  /** Appended to the appliance kernel's command line (replaces LIBGUESTFS_APPEND: include it). */
  append?: string
  /** Where to record the listener and its qemu, for a later instance to reap (the daemon's state). */
  records?: ChildRecords
  /** Add every drive read-only (guestfish --ro): nothing, not even a read-only mount, may write to it. */
  readOnly?: boolean
}

/** How the appliance is kept from outliving us. */
export type Containment =
  | {kind: 'pid-namespace'}
  /** No namespace could be made (bwrap missing or namespaces disallowed): killed on close or cancel only. */
  | {kind: 'none'; reason: string}

function guestError(error: unknown, what: string): never {
  if (error instanceof H2KError && error.code === 'H2K_TOOL_FAILED') {
    const stderr = String(error.details.stderr ?? error.message)
    throw new H2KError('H2K_GUEST_FAILED', `${what}: ${stderr.replace(/^libguestfs: error: /gm, '')}`, {cause: error, details: error.details})
  }
  throw error
}

/**
 * One libguestfs appliance for a whole job: `guestfish --listen` starts it once, every operation is a
 * `guestfish --remote` call (argument arrays, no shell), and close() syncs, shuts it down and makes sure
 * neither the listener nor its qemu outlives the job, even when cancelled.
 *
 * The listener daemonizes, so it is not our child and would survive a `kill -9` of ours: it runs in a PID
 * namespace that dies with us (appliance-namespace.ts), and where a recorder is given, the listener and its
 * qemu are also recorded so the next daemon reaps them if that ever fails.
 */
export class GuestfishSession implements GuestSession {
  private transfers = 0
  private closed = false
  private readonly recorded: RecordedChild[] = []

  private constructor(
    /** The listener's pid as guestfish sees it (inside the namespace, when there is one). */
    readonly pid: number,
    /** The listener's pid on the host. */
    readonly hostPid: number,
    readonly containment: Containment,
    private readonly namespace: ApplianceNamespace | undefined,
    private readonly scratch: string,
    private readonly signal: AbortSignal,
  ) {}

  static async launch(options: GuestfishLaunch): Promise<GuestfishSession> {
    let namespace: ApplianceNamespace | undefined
    let containment: Containment = {kind: 'pid-namespace'}
    try {
      namespace = await ApplianceNamespace.open({signal: options.signal, workDir: options.scratch})
    } catch (error) {
      options.signal.throwIfAborted()
      containment = {kind: 'none', reason: error instanceof Error ? error.message : String(error)}
    }
    try {
      // In a user namespace of its own, libguestfs would build a broken appliance: build it outside first.
      const fixed = namespace?.ownUserNamespace ? await applianceBuiltOutsideNamespace(options.env, options.signal).catch((error: unknown) => guestError(error, 'Could not build the libguestfs appliance')) : {}
      return await GuestfishSession.start({...options, env: {...options.env, ...fixed}}, namespace, containment)
    } catch (error) {
      await namespace?.close()
      throw error
    }
  }

  private static async start(options: GuestfishLaunch, namespace: ApplianceNamespace | undefined, containment: Containment): Promise<GuestfishSession> {
    const args = ['--listen', ...(options.readOnly ? ['--ro'] : []), ...options.drives.flatMap((d) => [`--format=${d.format}`, '-a', d.path])]
    // The listener daemonizes and keeps the stdio it inherited: captured through pipes, they would never
    // reach end-of-file. It reports its PID through a file instead.
    const announce = join(options.scratch, 'guestfish-listen.out')
    const listen = namespace ? namespace.command('guestfish', args) : {args, file: 'guestfish'}
    await runTool(listen.file, listen.args, {env: options.env, signal: options.signal, stdoutFile: announce}).catch((error: unknown) => guestError(error, 'Could not start guestfish'))
    const started = await readFile(announce, 'utf8')
    const pid = Number(/GUESTFISH_PID=(\d+)/.exec(started)?.[1])
    if (!Number.isInteger(pid) || pid <= 0) throw new H2KError('H2K_GUEST_FAILED', `guestfish --listen did not report its PID: ${started.trim()}`)
    const hostPid = namespace ? await namespace.hostPid(pid) : pid
    if (hostPid === undefined) throw new H2KError('H2K_GUEST_FAILED', `guestfish --listen (pid ${pid} in its namespace) exited at once: ${started.trim()}`)
    const session = new GuestfishSession(pid, hostPid, containment, namespace, options.scratch, options.signal)
    const onAbort = () => void (namespace ? namespace.close() : killTree(hostPid))
    options.signal.addEventListener('abort', onAbort, {once: true})
    try {
      await session.record(options.records, hostPid, 'guestfish listener')
      await session.waitUntilListening(announce)
      await session.call('set-memsize', String(options.memoryMiB ?? 1536))
      await session.call('set-smp', String(options.cpus ?? 2))
      if (options.append) await session.call('set-append', options.append)
      await session.call('run')
      // The appliance's qemu (and libguestfs' recovery process) are the listener's children, not ours.
      for (const child of await descendants(hostPid)) await session.record(options.records, child, 'libguestfs appliance process')
    } catch (error) {
      await session.close()
      throw error
    }
    return session
  }

  private async record(records: ChildRecords | undefined, pid: number, what: string): Promise<void> {
    const recorded = await records?.record(pid, what, this.scratch)
    if (recorded) this.recorded.push(recorded)
  }

  /**
   * The listener announces its PID as soon as it has forked, which can be before its control socket
   * exists: ask it something harmless until it answers (or has died, then say why).
   */
  private async waitUntilListening(announce: string): Promise<void> {
    const deadline = Date.now() + 30_000
    for (;;) {
      try {
        await this.call('get-memsize')
        return
      } catch (error) {
        const notYet = error instanceof H2KError && /not running|No such file|Connection refused/i.test(error.message)
        if (!notYet || !isAlive(this.hostPid) || Date.now() > deadline) {
          const stderr = await readFile(announce, 'utf8').catch(() => '')
          throw new H2KError('H2K_GUEST_FAILED', `guestfish --listen (pid ${this.hostPid}) did not start listening${stderr.trim() ? `: ${stderr.trim()}` : ''}.`, {cause: error})
        }
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }

  async call(command: string, ...args: string[]): Promise<string> {
    if (this.closed) throw new H2KError('H2K_INTERNAL', `guest session already closed (running ${command})`)
    const remote = [`--remote=${this.pid}`, '--', command, ...args]
    const {file, args: argv} = this.namespace ? this.namespace.command('guestfish', remote) : {args: remote, file: 'guestfish'}
    const result = await runTool(file, argv, {signal: this.signal}).catch((error: unknown) => guestError(error, `guestfish ${command} failed`))
    return result.stdout
  }

  async exists(path: string): Promise<boolean> {
    return (await this.call('exists', path)).trim() === 'true'
  }

  async readFile(path: string): Promise<string | null> {
    if (!(await this.exists(path))) return null
    const local = join(this.scratch, `guest-read-${this.transfers++}`)
    try {
      await this.call('download', path, local)
      return await readFile(local, 'utf8')
    } finally {
      await rm(local, {force: true})
    }
  }

  async writeFile(path: string, content: string): Promise<void> {
    const local = join(this.scratch, `guest-write-${this.transfers++}`)
    try {
      await writeFile(local, content)
      await this.call('upload', local, path)
    } finally {
      await rm(local, {force: true})
    }
  }

  async sh(script: string): Promise<string> {
    return this.call('sh', `export PATH=${GUEST_PATH}; ${script}`)
  }

  /** Flush and stop the appliance; idempotent; never leaves the listener or qemu running. */
  async close(): Promise<void> {
    if (this.closed) return
    let exiting = false
    try {
      if (!this.signal.aborted && isAlive(this.hostPid)) {
        await this.call('umount-all').catch(() => undefined)
        await this.call('sync').catch(() => undefined)
        await this.call('shutdown').catch(() => undefined)
        exiting = true
        await this.call('exit').catch(() => undefined)
      }
    } finally {
      this.closed = true
      // After `exit` the listener ends on its own: give it the time to (the overlays are synced already).
      if (exiting) await waitGone([this.hostPid], 10_000)
      if (this.namespace) await this.namespace.close()
      else if (isAlive(this.hostPid)) await killTree(this.hostPid)
      // Whatever still runs keeps its record: the daemon's next start reaps it.
      const ended = await waitGone([this.hostPid, ...this.recorded.map((r) => r.pid)], 5000)
      if (ended) await Promise.all(this.recorded.splice(0).map((r) => r.forget()))
    }
  }
}
