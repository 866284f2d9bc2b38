import {createHmac, timingSafeEqual} from 'node:crypto'
import {createServer, type IncomingHttpHeaders, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

export interface ReceivedRequest {
  path: string
  method: string
  headers: IncomingHttpHeaders
  body: string
  json: any
  /** The X-Hyper2kvm-Signature checked against the receiver's secret (undefined: no secret to check with). */
  signatureValid?: boolean
  /** The status the receiver answered. */
  status: number
}

export interface Reply {
  status: number
  headers?: Record<string, string>
  /** Never answer (to test timeouts). */
  hang?: boolean
}

/** A receiver's own check of a signed body, written from the README's description (not the code under test). */
export function verifySignature(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const timestamp = String(headers['x-hyper2kvm-timestamp'] ?? '')
  const signature = String(headers['x-hyper2kvm-signature'] ?? '')
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`)
  const given = Buffer.from(signature)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** A real HTTP server on 127.0.0.1 that records every request; `reply` decides each answer. */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = []
  reply: (request: {path: string; index: number}) => Reply = () => ({status: 200})
  private readonly hanging = new Set<() => void>()

  private constructor(
    private readonly server: Server,
    private readonly secrets: Record<string, string>,
  ) {}

  /** `secrets`: path → secret the receiver verifies signatures with. */
  static async start(secrets: Record<string, string> = {}, port = 0): Promise<WebhookReceiver> {
    let receiver!: WebhookReceiver
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        const path = req.url ?? '/'
        const reply = receiver.reply({index: receiver.requests.length, path})
        let json: unknown
        try {
          json = JSON.parse(body)
        } catch {
          json = undefined
        }
        const secret = receiver.secrets[path]
        receiver.requests.push({body, headers: req.headers, json, method: req.method ?? '', path, status: reply.status, ...(secret ? {signatureValid: verifySignature(secret, req.headers, body)} : {})})
        if (reply.hang) {
          const end = () => res.destroy()
          receiver.hanging.add(end)
          return
        }
        res.writeHead(reply.status, reply.headers ?? {})
        res.end('ok')
      })
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    receiver = new WebhookReceiver(server, secrets)
    return receiver
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`
  }

  on(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path)
  }

  async close(): Promise<void> {
    for (const end of this.hanging) end()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
