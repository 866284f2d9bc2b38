/**
 * systemd's notification protocol (sd_notify): `KEY=value` lines in one datagram to the unix socket named
 * by $NOTIFY_SOCKET. Node has no unix datagram sockets; the `unix-dgram` package (native) sends them.
 *
 * The environment is the process's, so the notifier is too: read once, then NOTIFY_SOCKET, WATCHDOG_USEC
 * and WATCHDOG_PID are removed from process.env so the tools the daemon runs (qemu, libguestfs …) never
 * inherit them (what sd_notify's `unset_environment` does).
 */
import {createRequire} from 'node:module'

/** The part of unix-dgram's socket used here (the package ships no types). */
interface UnixDgramSocket {
  on(event: 'error', listener: (error: Error) => void): void
  send(buf: Buffer, offset: number, length: number, path: string, callback: (error?: Error) => void): void
  close(): void
}

interface UnixDgram {
  createSocket(type: 'unix_dgram'): UnixDgramSocket
}

export interface SdNotifyEnvironment {
  NOTIFY_SOCKET?: string
  WATCHDOG_USEC?: string
  WATCHDOG_PID?: string
}

/** What the environment asks for: where to notify and how often the watchdog wants a ping. */
export interface NotifySettings {
  socketPath?: string
  /** Microseconds within which systemd expects WATCHDOG=1 (only when the watchdog is meant for this process). */
  watchdogUsec?: number
  /** Why notifications cannot be sent although $NOTIFY_SOCKET is set. */
  problem?: string
}

/** Read the sd_notify variables; pure (no side effects) so it can be tested with any environment. */
export function notifySettings(env: SdNotifyEnvironment, pid = process.pid): NotifySettings {
  const socket = env.NOTIFY_SOCKET
  if (socket === undefined || socket === '') return {}
  const usec = env.WATCHDOG_USEC === undefined ? undefined : Number(env.WATCHDOG_USEC)
  const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === '' || Number(env.WATCHDOG_PID) === pid
  const watchdogUsec = usec !== undefined && Number.isSafeInteger(usec) && usec > 0 && forUs ? usec : undefined
  if (socket.startsWith('@')) {
    // unix-dgram copies the path with strncpy (a leading NUL ends it) and passes the whole sockaddr length,
    // so it cannot address an abstract name: say so instead of notifying the wrong socket.
    return {problem: `NOTIFY_SOCKET=${socket} is an abstract socket name, which this build cannot send to; systemd's own notify socket (/run/systemd/notify) is a path`, ...(watchdogUsec ? {watchdogUsec} : {})}
  }
  if (!socket.startsWith('/')) return {problem: `NOTIFY_SOCKET=${socket} is neither a path nor an abstract name (vsock: is not supported)`}
  return {socketPath: socket, ...(watchdogUsec ? {watchdogUsec} : {})}
}

/** One notify socket; sends never throw (a lost notification is logged by the caller, never fatal). */
export class SdNotify {
  private socket?: UnixDgramSocket
  private closed = false

  constructor(
    readonly socketPath: string,
    readonly watchdogUsec: number | undefined,
  ) {}

  /** Send `KEY=value` lines in one datagram; resolves with the error when it could not be sent. */
  notify(state: Record<string, string | number>): Promise<Error | undefined> {
    if (this.closed) return Promise.resolve(undefined)
    // Values are one line each: a newline would start another assignment.
    const text = Object.entries(state)
      .map(([key, value]) => `${key}=${String(value).replace(/[\r\n]+/g, ' ')}`)
      .join('\n')
    const buf = Buffer.from(`${text}\n`)
    return new Promise((resolve) => {
      try {
        this.socket ??= this.open()
        this.socket.send(buf, 0, buf.length, this.socketPath, (error) => resolve(error))
      } catch (error) {
        resolve(error as Error)
      }
    })
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    // Its poll handle would keep the process alive.
    this.socket?.close()
    this.socket = undefined
  }

  private open(): UnixDgramSocket {
    const unix = createRequire(import.meta.url)('unix-dgram') as UnixDgram
    const socket = unix.createSocket('unix_dgram')
    // Errors of an unconnected send come through the callback; anything else must not crash the daemon.
    socket.on('error', () => undefined)
    return socket
  }
}

let processNotifier: {notifier?: SdNotify; problem?: string} | undefined

/**
 * The process's notifier, or none when $NOTIFY_SOCKET is unset (not run by systemd with Type=notify);
 * `problem` says why it is set but unusable. Reads and clears the variables on the first call.
 */
export function systemdNotifier(): {notifier?: SdNotify; problem?: string} {
  if (processNotifier) return processNotifier
  const settings = notifySettings(process.env)
  for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete process.env[name]
  processNotifier = {
    ...(settings.socketPath ? {notifier: new SdNotify(settings.socketPath, settings.watchdogUsec)} : {}),
    ...(settings.problem ? {problem: settings.problem} : {}),
  }
  return processNotifier
}
