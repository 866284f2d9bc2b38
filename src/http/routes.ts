import type {IncomingMessage} from 'node:http'

/** What a route handler gets: the request, its parsed URL, its id and the path parameters (`:id` segments). */
export interface HttpRequestContext {
  req: IncomingMessage
  url: URL
  requestId: string
  params: Record<string, string>
}

export interface HttpReply {
  status: number
  contentType: string
  body: string
  headers?: Record<string, string>
}

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
  /** Largest request body accepted, bytes (default 0: any body is refused with 413). A body needs a Content-Length (chunked: 413); the handler reads `req` itself. */
  maxBodyBytes?: number
  handle(ctx: HttpRequestContext): Promise<HttpReply>
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

/** A JSON reply. */
export function json(status: number, value: unknown, headers?: Record<string, string>): HttpReply {
  return {body: `${JSON.stringify(value)}\n`, contentType: 'application/json; charset=utf-8', status, ...(headers ? {headers} : {})}
}
