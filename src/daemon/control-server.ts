import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {chmod, unlink} from 'node:fs/promises'
import {connect, createServer, type Server, type Socket} from 'node:net'

import {H2KError} from '@hyper2kvm/plugin-api'

/** What the control socket accepts; anything else is refused. */
export const CONTROL_COMMANDS = ['status', 'stats', 'pause', 'resume', 'drain', 'stop'] as const
export type ControlCommand = (typeof CONTROL_COMMANDS)[number]

/** A request line is `{"command":"status"}`; a line this long without a newline is hostile: the connection is closed. */
export const MAX_REQUEST_BYTES = 1024 * 1024
/** Connections served at once; more are closed by the server as they arrive. */
export const MAX_CONNECTIONS = 16
/** A connection that sends nothing for this long is closed (it would hold one of MAX_CONNECTIONS). */
export const IDLE_TIMEOUT_MS = 60_000

export interface ControlReply {
  reply: Record<string, unknown>
  /** Runs once the reply has been written (drain and stop act after answering). */
  after?: () => void
}

/** What the control server needs from the daemon: one answer per command, and a log line. */
export interface ControlHandler {
  handle(command: ControlCommand): ControlReply
  log(level: 'error' | 'warn' | 'info' | 'debug', event: string, fields: Record<string, unknown>, message?: string): void
}

/** Commands that change the daemon: logged at info; status and stats (polled by health checks) at debug. */
const ACTIONS: readonly ControlCommand[] = ['pause', 'resume', 'drain', 'stop']

/**
 * Every request line gets an id, `req-` and 12 hex digits: in its reply (`request_id`) and in each log
 * line about it, so the id a failed `ctl` prints finds what the daemon logged.
 */
export const newRequestId = (): string => `req-${randomBytes(6).toString('hex')}`

const isCommand = (value: unknown): value is ControlCommand => typeof value === 'string' && (CONTROL_COMMANDS as readonly string[]).includes(value)

/** One request line → its command, or the H2K_USAGE error to reply. Only `{"command": "<known>"}` is a request. */
export function parseControlRequest(line: string): ControlCommand | H2KError {
  let request: unknown
  try {
    request = JSON.parse(line)
  } catch (error) {
    return new H2KError('H2K_USAGE', `Invalid control request: not JSON (${(error as Error).message}).`)
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) return new H2KError('H2K_USAGE', 'Invalid control request: expected an object {"command": "..."}.')
  const extra = Object.keys(request).filter((k) => k !== 'command')
  if (extra.length > 0) return new H2KError('H2K_USAGE', `Invalid control request: unknown key(s) ${extra.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}; a request has "command" only.`)
  const {command} = request as {command?: unknown}
  if (typeof command !== 'string') return new H2KError('H2K_USAGE', `Invalid control request: "command" must be a string (got ${command === null ? 'null' : Array.isArray(command) ? 'an array' : typeof command}).`)
  if (!isCommand(command)) return new H2KError('H2K_USAGE', `Unknown control command "${command.slice(0, 40)}" (${CONTROL_COMMANDS.join(', ')}).`)
  return command
}

/**
 * The daemon's control socket: newline-delimited JSON, one `{"command": …}` per line, one reply line
 * each. Requests are bounded (MAX_REQUEST_BYTES per line, MAX_CONNECTIONS at once, an idle timeout) and
 * strictly typed; replies may be of any size. Mode 0600: only the daemon's user (and root) may connect.
 */
export class ControlServer {
  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /** Listen on `path`; a stale socket (nobody answers) is replaced, a live one is H2K_DAEMON_RUNNING. */
  static async listen(path: string, handler: ControlHandler): Promise<ControlServer> {
    if (existsSync(path)) {
      if (await answers(path)) throw new H2KError('H2K_DAEMON_RUNNING', `A daemon already listens on ${path}.`, {details: {socket: path}})
      await unlink(path)
    }
    const server = createServer((socket) => serve(socket, handler))
    server.maxConnections = MAX_CONNECTIONS
    server.on('drop', () => handler.log('warn', 'control:busy', {max_connections: MAX_CONNECTIONS}, 'connection refused: too many at once'))
    const umask = process.umask(0o177)
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(path, () => {
          server.off('error', reject)
          // Listening: a later error (an accept failing for want of descriptors) is logged; unheard, it would end the daemon.
          server.on('error', (error) => handler.log('warn', 'control:error', {}, error.message))
          resolve()
        })
      })
    } finally {
      process.umask(umask)
    }
    await chmod(path, 0o600)
    return new ControlServer(server, path)
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = connect(path)
    probe.once('connect', () => {
      probe.destroy()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })
}

const replyLine = (reply: Record<string, unknown>): string => `${JSON.stringify(reply)}\n`
const errorReply = (error: H2KError, requestId: string): Record<string, unknown> => ({error: {code: error.code, message: error.message}, ok: false, request_id: requestId})

/** One connection: split the bytes into lines (never holding more than MAX_REQUEST_BYTES of one), answer each. */
function serve(socket: Socket, handler: ControlHandler): void {
  let pending: Buffer[] = []
  let pendingBytes = 0
  let closed = false
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy())
  socket.on('error', () => socket.destroy())
  socket.on('data', (chunk: Buffer) => {
    if (closed) return
    let start = 0
    for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
      const line = Buffer.concat([...pending, chunk.subarray(start, end)]).toString('utf8')
      pending = []
      pendingBytes = 0
      start = end + 1
      if (line.length > MAX_REQUEST_BYTES) return refuseOversize()
      answer(line)
    }
    const rest = chunk.subarray(start)
    pendingBytes += rest.length
    if (pendingBytes > MAX_REQUEST_BYTES) return refuseOversize()
    if (rest.length > 0) pending.push(rest)
  })

  function refuseOversize(): void {
    closed = true
    pending = []
    const requestId = newRequestId()
    handler.log('warn', 'control:oversize', {limit_bytes: MAX_REQUEST_BYTES, request_id: requestId}, 'request line too long: connection closed')
    const error = new H2KError('H2K_USAGE', `Control request longer than ${MAX_REQUEST_BYTES} bytes without a newline: connection closed.`)
    socket.end(replyLine(errorReply(error, requestId)), () => socket.destroy())
  }

  function answer(line: string): void {
    if (line.trim() === '') return
    const requestId = newRequestId()
    const parsed = parseControlRequest(line)
    if (parsed instanceof H2KError) {
      handler.log('warn', 'control:refused', {code: parsed.code, request_id: requestId}, parsed.message)
      socket.write(replyLine(errorReply(parsed, requestId)))
      return
    }
    handler.log(ACTIONS.includes(parsed) ? 'info' : 'debug', 'control:request', {command: parsed, request_id: requestId})
    let answered: ControlReply
    try {
      answered = handler.handle(parsed)
    } catch (error) {
      const failure = error instanceof H2KError ? error : new H2KError('H2K_INTERNAL', (error as Error).message)
      handler.log('error', 'control:failed', {code: failure.code, command: parsed, request_id: requestId}, failure.message)
      socket.write(replyLine(errorReply(failure, requestId)))
      return
    }
    socket.write(replyLine({ok: true, ...answered.reply, request_id: requestId}), () => answered.after?.())
  }
}
