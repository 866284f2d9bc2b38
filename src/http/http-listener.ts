import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http'
import type {AddressInfo} from 'node:net'

import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import type {BearerToken} from './bearer-token.js'
import {type BrowserGuard, browserRefusal} from './browser-guard.js'
import {type RateLimitSettings, RateLimiter} from './rate-limit.js'
import {readJsonBody} from './read-body.js'
import {requestIdOf} from './request-id.js'
import {type HttpReply, type HttpStreamReply, type RouteTable, type StreamSink, errorReply, isStreamReply} from './routes.js'

export interface HttpListenerOptions {
  address: string
  port: number
  routes: RouteTable
  /** When set, every route not marked `open` needs `Authorization: Bearer <token>`. */
  token?: BearerToken
  log: DaemonLogFn
  /** Called once per answered request (metrics); `route` is the route's name, `unmatched` or `refused`. */
  onAnswered?: (route: string, status: number) => void
  /** Requests per token (per client address without one) on routes not marked `open`: beyond it 429 + Retry-After. */
  rateLimit?: RateLimitSettings
  /** What the listener serves, for messages (`metrics`, `api`). */
  label?: string
  /** Refuse DNS-rebinding Host names (without a token) and, with `full`, cross-site browser requests: 403 (browser-guard.ts). */
  browserGuard?: BrowserGuard
}

/** Limits of a listener that only serves small GET answers to scrapers and probes. */
const LIMITS = {
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5000,
  maxConnections: 64,
  maxHeaderBytes: 8192,
  maxHeadersCount: 64,
  requestTimeoutMs: 15_000,
  socketIdleMs: 30_000,
}

/** Bytes a streaming reply may hold unsent (its client not reading) before it is ended. */
export const MAX_STREAM_BUFFER_BYTES = 1024 * 1024

/** Longest request path written to a log line (the path is the caller's text). */
const LOGGED_PATH_MAX = 200

/**
 * The daemon's HTTP listener (node:http, no framework): a route table, request ids, the bearer token,
 * request limits and one `http:request` log line per request.
 */
export class HttpListener {
  /** Streaming replies still open: ended when the listener closes. */
  private readonly streams = new Set<StreamSink>()
  private readonly limiter?: RateLimiter

  private constructor(
    private readonly server: Server,
    private readonly options: HttpListenerOptions,
  ) {
    if (options.rateLimit) this.limiter = new RateLimiter(options.rateLimit)
  }

  /** Listen on address:port; H2K_LISTEN_FAILED when the port is taken or the address is not ours. */
  static async listen(options: HttpListenerOptions): Promise<HttpListener> {
    const server = createServer({maxHeaderSize: LIMITS.maxHeaderBytes})
    const listener = new HttpListener(server, options)
    server.headersTimeout = LIMITS.headersTimeoutMs
    server.requestTimeout = LIMITS.requestTimeoutMs
    server.keepAliveTimeout = LIMITS.keepAliveTimeoutMs
    server.maxHeadersCount = LIMITS.maxHeadersCount
    server.maxConnections = LIMITS.maxConnections
    server.setTimeout(LIMITS.socketIdleMs, (socket) => socket.destroy())
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // serve() answers every handler failure itself; anything escaping it must not end the daemon.
      listener.serve(req, res).catch((error: unknown) => {
        options.log('warn', 'http:serve-failed', {}, mapForeignError(error).message)
        res.destroy()
      })
    })
    server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      // Malformed requests, oversize headers, timeouts: answered (when the socket still can be) and closed.
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
      if (socket.writable) socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      else socket.destroy()
      options.log('debug', 'http:client-error', {code: error.code, status})
    })
    await new Promise<void>((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException) => {
        const where = `${options.address}:${options.port}`
        const why = error.code === 'EADDRINUSE' ? 'the port is already in use' : error.code === 'EADDRNOTAVAIL' ? 'the address is not one of this host' : error.code === 'EACCES' ? 'permission denied (ports below 1024 need privilege)' : mapForeignError(error).message
        reject(new H2KError('H2K_LISTEN_FAILED', `The HTTP listener (${options.label ?? 'metrics'}) cannot listen on ${where}: ${why}.`, {cause: error, details: {address: options.address, code: error.code, port: options.port}}))
      }
      server.once('error', failed)
      server.listen({exclusive: true, host: options.address, port: options.port}, () => {
        server.off('error', failed)
        server.on('error', (error) => options.log('warn', 'http:error', {}, error.message))
        resolve()
      })
    })
    return listener
  }

  /** The bound address and port (port 0 in the configuration picks a free one). */
  get address(): AddressInfo {
    return this.server.address() as AddressInfo
  }

  /** Streams open now (GET /api/v1/events). */
  get openStreams(): number {
    return this.streams.size
  }

  async close(): Promise<void> {
    for (const stream of [...this.streams]) stream.end()
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint()
    const requestId = requestIdOf(req.headers['x-request-id'])
    const method = req.method ?? 'GET'
    let url = new URL('/', 'http://localhost')
    let route = 'unmatched'
    let reply: HttpReply | HttpStreamReply
    let bodyRead = false
    try {
      url = new URL(req.url ?? '/', 'http://localhost')
    } catch {
      // An absolute-form target with an invalid authority: answered 400 below, logged with path `/`.
      route = 'refused'
    }
    try {
      const {allowed, found} = route === 'refused' ? {allowed: []} : this.options.routes.match(method, url.pathname)
      if (found) route = found.route.name
      const body = declaredBody(req)
      const authorized = !found || found.route.open || !this.options.token || this.options.token.accepts(req.headers.authorization)
      const limited = found && !found.route.open ? this.limiter?.take(this.options.token && authorized ? 'token' : `addr:${req.socket.remoteAddress ?? '?'}`) : undefined
      const browser = this.options.browserGuard ? browserRefusal(req, this.options.browserGuard, !this.options.token) : undefined
      if (route === 'refused') {
        reply = errorReply(400, 'The request target is not a valid URL.', requestId)
      } else if (browser !== undefined) {
        reply = errorReply(browser.status, browser.message, requestId)
      } else if (!found) {
        reply = allowed.length > 0 ? errorReply(405, `${method} is not allowed here.`, requestId, {headers: {Allow: [...new Set([...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])])].join(', ')}}) : errorReply(404, 'No such endpoint.', requestId)
      } else if (limited && !limited.ok) {
        reply = errorReply(429, `Too many requests; retry in ${limited.retryAfterSeconds} s.`, requestId, {headers: {'Retry-After': String(limited.retryAfterSeconds)}})
      } else if (!authorized) {
        reply = errorReply(401, 'A bearer token is required (Authorization: Bearer <token>).', requestId, {headers: {'WWW-Authenticate': 'Bearer realm="hyper2kvm"'}})
      } else if (body === 'invalid') {
        reply = errorReply(400, 'The Content-Length header is invalid.', requestId)
      } else if (found.route.body === 'json' && (found.route.maxBodyBytes ?? 0) > 0) {
        bodyRead = true
        const read = await readJsonBody(req, found.route.maxBodyBytes!)
        if ('status' in read) {
          // 415 and 413 answer before the body was (fully) read: that connection is closed after the reply.
          bodyRead = read.status === 400
          reply = errorReply(read.status, read.message, requestId)
        } else reply = await found.route.handle({body: read.value, params: found.params, req, requestId, url})
      } else if (body > (found.route.maxBodyBytes ?? 0)) {
        reply = errorReply(413, found.route.maxBodyBytes ? `The request body is larger than ${found.route.maxBodyBytes} bytes.` : 'This endpoint takes no request body.', requestId)
      } else {
        reply = await found.route.handle({params: found.params, req, requestId, url})
      }
    } catch (error) {
      const mapped = mapForeignError(error)
      this.options.log('warn', 'http:handler-failed', {code: mapped.code, request_id: requestId, route}, mapped.message)
      reply = errorReply(500, 'Internal error; the daemon log has the details.', requestId)
    }
    if (isStreamReply(reply)) this.stream(req, res, reply, requestId)
    else this.send(req, res, reply, requestId, bodyRead)
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6
    this.options.onAnswered?.(route, reply.status)
    this.options.log('debug', 'http:request', {duration_ms: Math.round(durationMs * 10) / 10, method: method.slice(0, 16), path: url.pathname.slice(0, LOGGED_PATH_MAX), request_id: requestId, route, status: reply.status})
  }

  private send(req: IncomingMessage, res: ServerResponse, reply: HttpReply, requestId: string, bodyRead = false): void {
    const headers: Record<string, string | number> = {
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(reply.body),
      'Content-Type': reply.contentType,
      'X-Content-Type-Options': 'nosniff',
      'X-Request-Id': requestId,
      ...reply.headers,
    }
    // A request body we did not read would be parsed as the next request: close the connection instead.
    if (!bodyRead && declaredBody(req) !== 0) headers.Connection = 'close'
    res.writeHead(reply.status, headers)
    res.end(req.method === 'HEAD' ? undefined : reply.body)
  }

  /** A long-lived reply: no idle timeout on its socket, ended by either side or by close(). */
  private stream(req: IncomingMessage, res: ServerResponse, reply: HttpStreamReply, requestId: string): void {
    req.socket.setTimeout(0)
    res.writeHead(reply.status, {
      'Cache-Control': 'no-store',
      Connection: 'close',
      'Content-Type': reply.contentType,
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
      'X-Request-Id': requestId,
      ...reply.headers,
    })
    res.flushHeaders()
    const closers: Array<() => void> = []
    const streams = this.streams
    const sink: StreamSink = {
      get closed() {
        return !streams.has(sink)
      },
      end() {
        if (!streams.delete(sink)) return
        res.end()
        for (const fn of closers.splice(0)) fn()
      },
      onClose(fn) {
        if (streams.has(sink)) closers.push(fn)
        else fn()
      },
      write(text) {
        if (!streams.has(sink)) return false
        res.write(text)
        // A client that stops reading: past the bound the stream ends (it reconnects with Last-Event-ID).
        if (res.writableLength > MAX_STREAM_BUFFER_BYTES) {
          sink.end()
          res.destroy()
          return false
        }
        return true
      },
    }
    streams.add(sink)
    res.on('close', () => sink.end())
    if (req.method === 'HEAD') sink.end()
    else reply.open(sink)
  }
}

/** The body the request announces: its Content-Length, Infinity for a chunked one, 'invalid' for a bad header. */
function declaredBody(req: IncomingMessage): number | 'invalid' {
  if (req.headers['transfer-encoding'] !== undefined) return Number.POSITIVE_INFINITY
  const length = req.headers['content-length']
  if (length === undefined) return 0
  return /^\d{1,15}$/.test(length) ? Number(length) : 'invalid'
}
