/**
 * The circuit breaker of the driver thread. A call that failed because the server (or the road to it) did
 * not answer opens it; while it is open, calls fail at once with "unavailable" instead of each waiting B,
 * so a daemon cut off from its store keeps its event loop (timers, signals, fencing) instead of blocking in
 * every store call. A background probe — a new connection and `SELECT 1`, with backoff 50 ms → 1 s —
 * closes it again once the server answers.
 */
import pg from 'pg'

import {backoffMs, sleep, ThreadFailure} from './postgres-failures.js'

export interface BreakerEvents {
  /** Opened: drop what may be dead (the pool's idle connections, the LISTEN connection). */
  opened(): void
  /** Closed after a probe got through: listen again, wake the listeners (a NOTIFY may have been missed). */
  closed(): void
}

export class Breaker {
  private openedAt: number | undefined
  private reason = ''
  private stopped = false
  private probing = false

  constructor(
    /** Settings of the probe's own connection (bounded: connectionTimeoutMillis, query_timeout). */
    private readonly probeConfig: pg.ClientConfig,
    private readonly events: BreakerEvents,
  ) {}

  get isOpen(): boolean {
    return this.openedAt !== undefined
  }

  /** Open (if closed) after a call failed with `reason`, and start probing. */
  trip(reason: string): void {
    if (this.stopped || this.openedAt !== undefined) return
    this.openedAt = Date.now()
    this.reason = reason
    this.events.opened()
    void this.probe()
  }

  /** The failure of a call refused while the breaker is open (no waiting). */
  refusal(): ThreadFailure {
    const ago = ((Date.now() - (this.openedAt ?? Date.now())) / 1000).toFixed(1)
    return new ThreadFailure({code: 'BREAKER_OPEN', kind: 'unavailable', message: `a call failed ${ago} s ago (${this.reason}); calls fail at once until a background probe reaches the server again`})
  }

  stop(): void {
    this.stopped = true
  }

  private async probe(): Promise<void> {
    if (this.probing) return
    this.probing = true
    try {
      for (let attempt = 0; !this.stopped; attempt++) {
        await sleep(backoffMs(attempt))
        if (this.stopped) return
        if (await answers(this.probeConfig)) {
          this.openedAt = undefined
          this.events.closed()
          return
        }
      }
    } finally {
      this.probing = false
    }
  }
}

/** Whether a new connection can be made and answers `SELECT 1` (each step bounded by the client's settings). */
async function answers(config: pg.ClientConfig): Promise<boolean> {
  const client = new pg.Client(config)
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.query({query_timeout: config.statement_timeout || 5000, text: 'SELECT 1'} as pg.QueryConfig)
    void client.end().catch(() => undefined)
    return true
  } catch {
    // A hung connection is destroyed, not ended politely (that could wait on a dead road).
    const stream = (client as unknown as {connection?: {stream?: {destroy(): void}}}).connection?.stream
    stream?.destroy()
    return false
  }
}
