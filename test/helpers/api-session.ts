import assert from 'node:assert/strict'
import {request as httpRequest} from 'node:http'

import {until, type RunningDaemon} from './daemon-process.js'
import {expectValid, expectValidRequest} from './openapi-check.js'

export interface ApiAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The parsed JSON body (undefined when there was none). */
  body: any
  text: string
}

/** The port of a daemon's API listener, from its `api:listening` line. */
export async function apiPort(d: RunningDaemon): Promise<number> {
  const line = await until('api:listening', () => /api:listening address=\S+ auth=.* port=(\d+)/.exec(d.stderr()) ?? undefined, 10_000, d)
  return Number(line[1])
}

/**
 * Requests to a daemon's REST API; every answer is checked against openapi.yaml (expectValid) before the
 * test sees it, so is every JSON request body the API took (expectValidRequest), and every documented
 * operation that answered is remembered (`covered`).
 */
export class ApiSession {
  readonly covered = new Set<string>()

  constructor(
    readonly port: number,
    readonly token?: string,
  ) {}

  async call(method: string, path: string, options: {body?: unknown; raw?: string; headers?: Record<string, string>; token?: string | null} = {}): Promise<ApiAnswer> {
    const token = options.token === null ? undefined : (options.token ?? this.token)
    const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
    const headers: Record<string, string> = {
      ...(token ? {Authorization: `Bearer ${token}`} : {}),
      // The API refuses a state-changing request without it, body or not (browser-guard.ts).
      ...(method === 'GET' || method === 'HEAD' ? {} : {'Content-Type': 'application/json'}),
      ...(payload === undefined ? {} : {'Content-Type': 'application/json', ...(options.headers?.['Transfer-Encoding'] ? {} : {'Content-Length': String(Buffer.byteLength(payload))})}),
      ...options.headers,
    }
    const answer = await new Promise<{status: number; headers: ApiAnswer['headers']; text: string}>((resolve, reject) => {
      const req = httpRequest({agent: false, headers, host: '127.0.0.1', method, path, port: this.port}, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (text += chunk))
        res.on('end', () => resolve({headers: res.headers, status: res.statusCode ?? 0, text}))
      })
      req.on('error', reject)
      req.end(payload)
    })
    assert.match(String(answer.headers['content-type']), /^application\/json/, `${method} ${path}: ${answer.status} ${answer.text}`)
    const body = answer.text === '' ? undefined : JSON.parse(answer.text)
    expectValid(method, path, answer.status, body)
    // A JSON body the API took must be one the document allows (its refusals are checked where a test sends them).
    if (options.body !== undefined && answer.status >= 200 && answer.status < 300) expectValidRequest(method, path, options.body)
    if (body?.error) assert.equal(body.error.request_id, answer.headers['x-request-id'], 'the error names the request id of the reply')
    const template = path.split('?')[0]!.replace(/^(\/api\/v1\/(?:jobs|dlq))\/[^/]+/, '$1/{id}')
    this.covered.add(`${method} ${template}`)
    return {...answer, body}
  }

  /** Open GET /api/v1/events: the events as they arrive, until closed. */
  events(query = '', headers: Record<string, string> = {}): Promise<EventTap> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({agent: false, headers: {...(this.token ? {Authorization: `Bearer ${this.token}`} : {}), ...headers}, host: '127.0.0.1', method: 'GET', path: `/api/v1/events${query}`, port: this.port}, (res) => {
        this.covered.add('GET /api/v1/events')
        const tap = new EventTap(res.statusCode ?? 0, res.headers, () => req.destroy())
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => tap.feed(chunk))
        res.on('end', () => (tap.ended = true))
        res.on('error', () => (tap.ended = true))
        resolve(tap)
      })
      req.on('error', reject)
      req.end()
    })
  }
}

export interface StreamEvent {
  id: number
  event: string
  data: any
}

/** A server-sent event stream being read. */
export class EventTap {
  readonly events: StreamEvent[] = []
  raw = ''
  ended = false
  private buffer = ''

  constructor(
    readonly status: number,
    readonly headers: Record<string, string | string[] | undefined>,
    readonly close: () => void,
  ) {}

  feed(chunk: string): void {
    this.raw += chunk
    this.buffer += chunk
    let end: number
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end)
      this.buffer = this.buffer.slice(end + 2)
      const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trimStart()]))
      if (fields.data !== undefined) this.events.push({data: JSON.parse(fields.data), event: fields.event ?? 'message', id: Number(fields.id)})
    }
  }

  async waitFor(what: string, fn: (e: StreamEvent) => boolean, timeoutMs = 30_000): Promise<StreamEvent> {
    return until(what, () => this.events.find(fn), timeoutMs)
  }
}
