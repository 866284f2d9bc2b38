/**
 * The driver thread's LISTEN connection: one dedicated client LISTENing on every channel, re-made in the
 * background (with backoff) after it breaks, then every channel is woken once (a NOTIFY may have been missed
 * meanwhile). While the breaker is open it is not re-made; the breaker's closing re-makes it.
 */
import pg from 'pg'

import {type Deadline, timeLeft} from './postgres-connections.js'
import {backoffMs, deadlinePassed, isConnectionError, isRefusedConnection, refused, sleep, unavailable} from './postgres-failures.js'

const quoted = (channel: string): string => `"${channel.replaceAll('"', '""')}"`

export class Listener {
  private readonly channels = new Set<string>()
  private client: pg.Client | undefined
  private connecting: Promise<pg.Client> | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private closing = false

  constructor(
    private readonly config: pg.ClientConfig,
    /** Tell the main thread that `channel` has news. */
    private readonly wake: (channel: string) => void,
    /** The breaker is open: do not try to reconnect (its closing calls resume()). */
    private readonly blocked: () => boolean,
  ) {}

  /** Channels taken over from a driver thread that died: LISTENed on in the background, then woken. */
  adopt(channels: readonly string[]): void {
    for (const channel of channels) this.channels.add(channel)
    this.scheduleReconnect(0)
  }

  async listen(channel: string, deadline: Deadline): Promise<void> {
    if (this.channels.has(channel)) return
    this.channels.add(channel)
    const client = await this.ensure(deadline).catch((error: unknown) => {
      this.channels.delete(channel)
      throw error
    })
    // A fresh connection LISTENed on every channel already; an existing one needs this one added.
    await client.query({query_timeout: Math.max(1, timeLeft(deadline)), text: `LISTEN ${quoted(channel)}`} as pg.QueryConfig).catch((error: unknown) => {
      this.channels.delete(channel)
      if (!isConnectionError(error)) throw refused(error)
      this.drop(client)
      throw unavailable(error)
    })
  }

  async unlisten(channel: string): Promise<void> {
    if (!this.channels.delete(channel)) return
    const client = this.client
    if (!client) return
    if (this.channels.size === 0) {
      this.client = undefined
      destroy(client)
    } else {
      await client.query({query_timeout: 1000, text: `UNLISTEN ${quoted(channel)}`} as pg.QueryConfig).catch(() => this.drop(client))
    }
  }

  /** The road to the server broke (the breaker opened): this connection may be dead without knowing it. */
  suspend(): void {
    const client = this.client
    this.client = undefined
    if (client) destroy(client)
  }

  /** The server answers again: LISTEN anew, then wake every channel. */
  resume(): void {
    this.scheduleReconnect(0)
  }

  close(): void {
    this.closing = true
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.channels.clear()
    this.suspend()
  }

  private async connect(deadline: Deadline): Promise<pg.Client> {
    let last: unknown
    for (let attempt = 0; ; attempt++) {
      const left = timeLeft(deadline)
      if (left <= 0 || this.closing) throw deadlinePassed(deadline.boundMs, last)
      const client = new pg.Client({...this.config, connectionTimeoutMillis: Math.min(left, this.config.connectionTimeoutMillis ?? left)})
      client.on('error', () => this.drop(client))
      client.on('end', () => this.drop(client))
      try {
        await client.connect()
        client.on('notification', (message) => this.wake(message.channel))
        for (const channel of this.channels) await client.query({query_timeout: Math.max(1, timeLeft(deadline)), text: `LISTEN ${quoted(channel)}`} as pg.QueryConfig)
        return client
      } catch (error) {
        destroy(client)
        if (isRefusedConnection(error)) throw unavailable(error, {opens: false})
        if (!isConnectionError(error)) throw unavailable(error)
        last = error
      }
      await sleep(Math.min(backoffMs(attempt), timeLeft(deadline)))
    }
  }

  private async ensure(deadline: Deadline): Promise<pg.Client> {
    if (this.client) return this.client
    this.connecting ??= this.connect(deadline).finally(() => {
      this.connecting = undefined
    })
    const client = await this.connecting
    this.client = client
    return client
  }

  /** The LISTEN connection broke: connect again in the background and say "wake up" — a NOTIFY may have been missed meanwhile. */
  private drop(client: pg.Client): void {
    if (this.client !== client) return
    this.client = undefined
    destroy(client)
    this.scheduleReconnect(0)
  }

  private scheduleReconnect(attempt: number): void {
    if (this.closing || this.channels.size === 0 || this.reconnectTimer || this.blocked()) return
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (this.closing || this.channels.size === 0 || this.client || this.blocked()) return
      const bound = this.config.connectionTimeoutMillis ?? 10_000
      this.ensure({at: Date.now() + bound, boundMs: bound}).then(
        () => {
          for (const channel of this.channels) this.wake(channel)
        },
        () => this.scheduleReconnect(attempt + 1),
      )
    }, backoffMs(attempt))
  }
}

/** End a client without waiting on its road (which may be dead): its socket is destroyed. */
function destroy(client: pg.Client): void {
  const stream = (client as unknown as {connection?: {stream?: {destroy(): void}}}).connection?.stream
  void client.end().catch(() => undefined)
  stream?.destroy()
}
