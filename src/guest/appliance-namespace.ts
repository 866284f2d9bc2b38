import {type ChildProcess, spawn} from 'node:child_process'
import {lstat, mkdir, readFile, readlink} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import {childEnv} from '../exec/child-env.js'
import {descendants, waitGone} from '../exec/kill-tree.js'

/** Where `guestfish --listen` puts its socket (hard-coded by guestfish: /tmp, not $TMPDIR). */
export const guestfishSocketDir = (euid = process.geteuid!()): string => `/tmp/.guestfish-${euid}`

/**
 * guestfish checks its socket directory (a directory, mode 0700, ours) and creates it if missing. bwrap
 * needs it to exist as a mount point, and would create it with mode 0755, which every later guestfish of
 * this user would then refuse: make it the way guestfish does, and refuse what guestfish would refuse.
 */
async function prepareSocketDir(dir: string): Promise<void> {
  await mkdir(dir, {mode: 0o700}).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  const info = await lstat(dir)
  if (!info.isDirectory() || (info.mode & 0o777) !== 0o700 || info.uid !== process.geteuid!()) {
    throw new Error(`${dir} is not a directory of ours with mode 0700`)
  }
}

/** Read what bwrap writes to --info-fd (its JSON, then end of file), or why it did not start. */
function holderInfo(holder: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let info = ''
    let stderr = ''
    const timer = setTimeout(() => reject(new Error(`bwrap did not start within ${timeoutMs} ms`)), timeoutMs)
    holder.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    holder.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    // 'close', not 'exit': by then its stderr has been read to the end.
    holder.once('close', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`bwrap exited (${signal ?? code}): ${stderr.trim()}`))
    })
    const infoStream = holder.stdio[3] as NodeJS.ReadableStream
    infoStream.on('data', (chunk: Buffer) => (info += chunk.toString()))
    // Without a pid in it, bwrap failed: its exit (above) says why.
    infoStream.on('end', () => {
      const pid = Number(/"child-pid":\s*(\d+)/.exec(info)?.[1])
      if (!Number.isInteger(pid) || pid <= 1) return
      clearTimeout(timer)
      resolve(pid)
    })
  })
}

/**
 * A PID namespace for one libguestfs appliance, so that it cannot outlive us.
 *
 * `guestfish --listen` forks into the background: the listener is nobody's child, and a `kill -9` of the
 * daemon left it (and its TCG qemu) running for as long as nobody noticed. Inside a PID namespace it is
 * re-parented to the namespace's init instead of the host's, and when that init dies the kernel kills
 * every process in the namespace. The init is bwrap's (`--unshare-pid --die-with-parent`): it dies when
 * its bwrap dies, which dies with us (or when close() kills it). What keeps the namespace up meanwhile is a
 * `sleep infinity`; guestfish is started in it with `nsenter`, and so is every `guestfish --remote` call:
 * the client needs to see the listener's pid (it signals it) and its socket.
 *
 * The socket directory (/tmp/.guestfish-UID) is a private tmpfs in the namespace's own mount namespace, so
 * two appliances whose listeners got the same pid in their namespaces do not share a socket path. The rest
 * of the file system is the host's (`--dev-bind / /`): this is about lifetime, not confinement; the
 * appliance is a VM already.
 */
export class ApplianceNamespace {
  private closing: Promise<boolean> | undefined

  private constructor(
    private readonly holder: ChildProcess,
    /** Host pid of the namespace's init. */
    readonly initPid: number,
    /** Whether bwrap made a user namespace (not as root): then nsenter must enter it too. */
    readonly ownUserNamespace: boolean,
  ) {}

  /** Start the namespace; throws (with bwrap's reason) where bubblewrap is missing or namespaces are not allowed. */
  static async open(options: {workDir: string; signal: AbortSignal}): Promise<ApplianceNamespace> {
    options.signal.throwIfAborted()
    const socketDir = guestfishSocketDir()
    await prepareSocketDir(socketDir)
    const args = ['--die-with-parent', '--unshare-pid', '--dev-bind', '/', '/', '--proc', '/proc', '--perms', '0700', '--tmpfs', socketDir]
    // The work directory as the holder's working directory: `ps`/`/proc/PID/cwd` tell whose namespace it is.
    args.push('--chdir', options.workDir, '--info-fd', '3', '--', 'sleep', 'infinity')
    const holder = spawn('bwrap', args, {env: childEnv(), stdio: ['ignore', 'ignore', 'pipe', 'pipe']})
    let namespace: ApplianceNamespace
    try {
      const initPid = await holderInfo(holder, 10_000)
      // bwrap's init forks the command only once the mounts are in place: wait for it before entering.
      for (let i = 0; (await descendants(initPid)).length === 0; i++) {
        if (i > 200 || holder.exitCode !== null) throw new Error('bwrap did not start its command')
        await sleep(10)
      }
      const [ours, theirs] = await Promise.all([readlink('/proc/self/ns/user'), readlink(`/proc/${initPid}/ns/user`)])
      namespace = new ApplianceNamespace(holder, initPid, ours !== theirs)
    } catch (error) {
      holder.kill('SIGKILL')
      throw error
    }
    if (options.signal.aborted) {
      await namespace.close()
      options.signal.throwIfAborted()
    }
    options.signal.addEventListener('abort', () => void namespace.close(), {once: true})
    return namespace
  }

  /** The command line that runs `file args` inside the namespace. */
  command(file: string, args: readonly string[]): {file: string; args: string[]} {
    const user = this.ownUserNamespace ? ['--user', '--preserve-credentials'] : []
    return {args: ['--target', String(this.initPid), ...user, '--pid', '--mount', '--', file, ...args], file: 'nsenter'}
  }

  /** The host pid of the namespace's process `nsPid` (what guestfish reports is the pid inside). */
  async hostPid(nsPid: number): Promise<number | undefined> {
    for (const pid of await descendants(this.initPid)) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
      const ids = /^NSpid:\s+([\d\s]+)$/m.exec(status)?.[1]?.trim().split(/\s+/)
      if (ids && Number(ids.at(-1)) === nsPid) return pid
    }
    return undefined
  }

  /**
   * Kill everything in the namespace (its init dies with the holder, and takes every process with it).
   * Resolves to whether the namespace has ended; never rejects (it also runs from an abort listener).
   */
  close(): Promise<boolean> {
    this.closing ??= this.stop()
    return this.closing
  }

  private async stop(): Promise<boolean> {
    if (this.holder.exitCode === null && this.holder.signalCode === null) {
      const exited = new Promise((resolve) => this.holder.once('exit', resolve))
      this.holder.kill('SIGKILL')
      await exited
    }
    return waitGone([this.initPid], 5000)
  }
}
