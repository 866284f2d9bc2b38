import type {IncomingMessage} from 'node:http'

/** What a route handler gets: the request, its parsed URL, its id and the path parameters (`:id` segments). */
export interface HttpRequestContext {
  req: IncomingMessage
  url: URL
  requestId: string
  params: Record<string, string>
  /** The parsed JSON body of a route with `body: 'json'` (undefined when the request sent none). */
  body?: unknown
}

export interface HttpReply {
  status: number
  contentType: string
  body: string
  headers?: Record<string, string>
}

/** Where a streaming reply writes (server-sent events): text chunks, until either side closes. */
export interface StreamSink {
  /** Write one chunk; false once the stream is closed (the chunk is dropped). */
  write(text: string): boolean
  /** End the stream (idempotent). */
  end(): void
  /** Called once when the stream ends, whoever ended it (client gone, daemon stopping, `end()`). */
  onClose(fn: () => void): void
  readonly closed: boolean
}

/**
 * A long-lived reply (text/event-stream): headers are sent at once, then `open` writes to the sink for as
 * long as it likes. The listener's request and idle timeouts do not apply to it; closing the listener ends it.
 */
export interface HttpStreamReply {
  status: number
  contentType: string
  headers?: Record<string, string>
  open(sink: StreamSink): void
}

export const isStreamReply = (reply: HttpReply | HttpStreamReply): reply is HttpStreamReply => 'open' in reply

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'

/**
 * One route of the daemon's HTTP API. `path` is literal segments and `:name` parameters
 * (`/api/v1/jobs/:id`). The listener checks the method, the body rule and the token before `handle` runs.
 */
export interface Route {
  /** Stable name: the metrics label and log field (never the request's own path). */
  name: string
  method: HttpMethod
  path: string
  /** Answer without the bearer token even when one is configured (liveness probes). */
  open?: boolean
  /** Largest request body accepted, bytes (default 0: any body is refused with 413). Without `body`, a body needs a Content-Length (chunked: 413) and the handler reads `req` itself. */
  maxBodyBytes?: number
  /** 'json': the listener reads the body (Content-Type application/json, else 415; at most maxBodyBytes, counted as it arrives, chunked too, else 413; invalid JSON 400) into `ctx.body`. */
  body?: 'json'
  handle(ctx: HttpRequestContext): Promise<HttpReply | HttpStreamReply>
}

export interface RouteMatch {
  route: Route
  params: Record<string, string>
}

/** A small route table: exact segments and `:name` parameters, nothing else. */
export class RouteTable {
  private readonly routes: Array<{route: Route; segments: string[]}> = []

  constructor(routes: readonly Route[] = []) {
    for (const route of routes) this.add(route)
  }

  add(route: Route): void {
    this.routes.push({route, segments: route.path.split('/').filter(Boolean)})
  }

  /** The route for this method and path; `allowed` lists the methods of the path when the method does not match. */
  match(method: string, pathname: string): {found?: RouteMatch; allowed: HttpMethod[]} {
    const parts = pathname.split('/').filter(Boolean)
    const allowed: HttpMethod[] = []
    for (const {route, segments} of this.routes) {
      const params = matchSegments(segments, parts)
      if (!params) continue
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return {allowed, found: {params, route}}
      allowed.push(route.method)
    }
    return {allowed}
  }
}

function matchSegments(segments: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined
  const params: Record<string, string> = {}
  for (const [i, segment] of segments.entries()) {
    const part = parts[i]!
    if (segment.startsWith(':')) {
      let value: string
      try {
        value = decodeURIComponent(part)
      } catch {
        return undefined
      }
      params[segment.slice(1)] = value
    } else if (segment !== part) {
      return undefined
    }
  }
  return params
}

/** The one error shape of every listener: `{"error": {status, message, request_id, code?, details?}}`. */
export function errorReply(status: number, message: string, requestId: string, more: {code?: string; details?: Record<string, unknown>; headers?: Record<string, string>} = {}): HttpReply {
  const error = {message, request_id: requestId, status, ...(more.code === undefined ? {} : {code: more.code}), ...(more.details === undefined ? {} : {details: more.details})}
  return json(status, {error}, more.headers)
}

/** A JSON reply. */
export function json(status: number, value: unknown, headers?: Record<string, string>): HttpReply {
  return {body: `${JSON.stringify(value)}\n`, contentType: 'application/json; charset=utf-8', status, ...(headers ? {headers} : {})}
}
