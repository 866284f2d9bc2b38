import {execFileSync} from 'node:child_process'
import {request as httpRequest} from 'node:http'
import {connect} from 'node:net'

export interface HttpAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One real HTTP request (node:http, so a GET may carry a body and any header). */
export function request(port: number, path: string, options: {method?: string; headers?: Record<string, string>; body?: string; host?: string} = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({agent: false, headers: options.headers, host: options.host ?? '127.0.0.1', method: options.method ?? 'GET', path, port}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({body, headers: res.headers, status: res.statusCode ?? 0}))
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

/** One sample of a Prometheus text exposition: `name{a="x",b="y"}` with labels sorted, and its value. */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match) throw new Error(`not an exposition line: ${line}`)
    const labels = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort()
    samples.set(`${match[1]}${labels.length > 0 ? `{${labels.join(',')}}` : ''}`, Number(match[3]))
  }
  return samples
}

/** `promtool check metrics` on an exposition: its exit status and what it said. */
export function promtoolCheck(text: string): {ok: boolean; output: string} {
  try {
    const output = execFileSync('promtool', ['check', 'metrics'], {encoding: 'utf8', input: text, stdio: ['pipe', 'pipe', 'pipe']})
    return {ok: true, output}
  } catch (error) {
    const e = error as {code?: string; status?: number; stdout?: string; stderr?: string}
    if (e.code === 'ENOENT') return {ok: false, output: 'promtool is not installed: run scripts/setup.sh (Debian package prometheus)'}
    return {ok: false, output: `exit ${e.status}: ${e.stdout ?? ''}${e.stderr ?? ''}`}
  }
}

/** Bytes written as they are on a fresh connection (requests node's client would not send); what came back before the close. */
export function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = ''
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (reply += chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(reply))
  })
}
