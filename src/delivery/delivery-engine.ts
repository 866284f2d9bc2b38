import type {Channel, DeliveryOutcome} from './channel.js'
import {redactSecrets} from '../secrets/redact.js'
import type {Outbox, OutboxRow} from './outbox.js'

export type DeliveryLog = (level: 'error' | 'warn' | 'info' | 'debug', event: string, fields: Record<string, unknown>, message?: string) => void

export interface DeliveryOptions {
  /** Attempts per message before it is given up (default 8). */
  maxAttempts: number
  /** A message older than this is given up (default 24 h). */
  maxAgeMs: number
  /** First backoff ceiling; doubles per attempt (default 2 s). */
  baseDelayMs: number
  /** Backoff ceiling (default 10 min); a receiver's Retry-After is honoured up to 1 h. */
  maxDelayMs: number
  /** Per-attempt timeout (default 10 s). */
  timeoutMs: number
  /** Attempts in flight at once (default 4). */
  concurrency: number
  /** Messages waiting at most (default 1000): beyond, new ones are dropped with a log line, not stored. */
  maxPending: number
}

export const DELIVERY_DEFAULTS: DeliveryOptions = {baseDelayMs: 2000, concurrency: 4, maxAgeMs: 86_400_000, maxAttempts: 8, maxDelayMs: 600_000, maxPending: 1000, timeoutMs: 10_000}

const RETRY_AFTER_CAP_MS = 3_600_000

/** How long the outbox waits before it is read again after the store failed to answer. */
const OUTBOX_RETRY_MS = 5000
/** Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempt-1))]. */
export function backoffMs(attempt: number, options: Pick<DeliveryOptions, 'baseDelayMs' | 'maxDelayMs'>, random = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(random() * ceiling)
}

/** How enqueue() routes and merges one message. */
export interface EnqueueOptions {
  /** Only channels for which this is true (besides their own `accepts`). */
  only?: (channel: Channel) => boolean
  /**
   * At most one pending message per channel and key (e.g. a job's progress): a newer one takes the
   * waiting one's place (same delivery id and place in the queue); while that one is being sent, the newer
   * one is dropped.
   */
  coalesce?: string
}

/**
 * Delivers what producers put in the outbox, asynchronously and at most `concurrency` at a time: a message
 * is written first (so a restart resumes it), then sent per channel with a timeout, retried with backoff
 * on a transient failure, given up after maxAttempts or maxAge, dropped at once on a permanent one. A
 * channel's own limits (timeout, attempts, attempts in flight) win over the engine's. Never blocks the
 * producer. close() aborts what is in flight; those rows stay pending for the next start.
 */
export class DeliveryEngine {
  private readonly channels = new Map<string, Channel>()
  private readonly inFlight = new Map<string, {channel: string; controller: AbortController; done: Promise<void>}>()
  /** `<channel>\0<coalesce key>` → the pending row that stands for it, and back. */
  private readonly coalesced = new Map<string, string>()
  private readonly coalesceKeyOf = new Map<string, string>()
  private timer: NodeJS.Timeout | undefined
  private closed = false
  /** The outbox is at maxPending (logged once per spell). */
  private full = false
  private readonly options: DeliveryOptions

  constructor(
    private readonly outbox: Outbox,
    channels: readonly Channel[],
    private readonly log: DeliveryLog,
    options: Partial<DeliveryOptions> = {},
  ) {
    for (const channel of channels) this.channels.set(channel.id, channel)
    this.options = {...DELIVERY_DEFAULTS, ...options}
  }

  /** Resume what an earlier run left pending. */
  start(): void {
    this.kick()
  }

  /** Queue `payload` for every channel that accepts `event`; returns the delivery ids. */
  enqueue(event: string, payload: unknown, options: EnqueueOptions = {}): string[] {
    if (this.closed) return []
    const ids: string[] = []
    for (const channel of this.channels.values()) {
      if (channel.accepts && !channel.accepts(event)) continue
      if (options.only && !options.only(channel)) continue
      const key = options.coalesce === undefined ? undefined : `${channel.id}\0${options.coalesce}`
      const waiting = key === undefined ? undefined : this.coalesced.get(key)
      if (waiting !== undefined) {
        // Being sent: the newer one is dropped (the next one will replace nothing and be queued).
        if (this.inFlight.has(waiting)) continue
        if (this.outbox.replace(waiting, event, payload)) {
          ids.push(waiting)
          continue
        }
        this.forget(waiting)
      }
      // A flood (thousands of failing drops while a receiver is down) must not grow the store without end.
      if (this.outbox.pendingCount() >= this.options.maxPending) {
        if (!this.full) this.log('error', 'notify:outbox-full', {channel: channel.label, event, pending_max: this.options.maxPending}, 'too many notifications waiting: new ones are dropped until some are delivered or given up')
        this.full = true
        continue
      }
      this.full = false
      const id = this.outbox.add(channel.id, event, payload)
      if (key !== undefined) {
        this.coalesced.set(key, id)
        this.coalesceKeyOf.set(id, key)
      }
      ids.push(id)
    }
    if (ids.length > 0) this.kick()
    return ids
  }

  /** A row is no longer pending: it stands for its coalesce key no more. */
  private forget(id: string): void {
    const key = this.coalesceKeyOf.get(id)
    if (key === undefined) return
    this.coalesceKeyOf.delete(id)
    if (this.coalesced.get(key) === id) this.coalesced.delete(key)
  }

  /** Channels with as many attempts in flight as they allow. */
  private busyChannels(): Set<string> {
    const counts = new Map<string, number>()
    for (const f of this.inFlight.values()) counts.set(f.channel, (counts.get(f.channel) ?? 0) + 1)
    return new Set([...counts].filter(([id, n]) => n >= (this.channels.get(id)?.limits?.concurrency ?? Number.POSITIVE_INFINITY)).map(([id]) => id))
  }

  /**
   * Start what is due, never throwing: a store that does not answer (H2K_STORE_UNAVAILABLE) or fails is
   * logged and the outbox is tried again a few seconds later (kick runs from timers and promise callbacks).
   */
  private kick(): void {
    try {
      this.kickNow()
    } catch (error) {
      if (this.closed) return
      this.log('warn', 'notify:outbox-error', {}, `${(error as Error).message} (tried again in ${OUTBOX_RETRY_MS / 1000} s)`)
      clearTimeout(this.timer)
      this.timer = setTimeout(() => this.kick(), OUTBOX_RETRY_MS)
      this.timer.unref()
    }
  }

  /** Start what is due (up to `concurrency`, and each channel's own), then sleep until the next row is due. */
  private kickNow(): void {
    if (this.closed) return
    clearTimeout(this.timer)
    this.timer = undefined
    const now = Date.now()
    for (;;) {
      const free = this.options.concurrency - this.inFlight.size
      if (free <= 0) break
      const rows = this.outbox.due(now, free, new Set(this.inFlight.keys()), this.busyChannels())
      let taken = 0
      for (const row of rows) {
        if (this.busyChannels().has(row.channel) || this.inFlight.size >= this.options.concurrency) continue
        this.attempt(row)
        taken++
      }
      // Rows skipped for a channel that just became busy wait for its attempt to end (its finally kicks).
      if (taken === 0) break
    }
    const next = this.outbox.nextDue(new Set(this.inFlight.keys()), this.busyChannels())
    if (next !== undefined && this.inFlight.size < this.options.concurrency) {
      this.timer = setTimeout(() => this.kick(), Math.max(10, next - Date.now()))
      this.timer.unref()
    }
  }

  private attempt(row: OutboxRow): void {
    const channel = this.channels.get(row.channel)
    const fields = {channel: channel?.label ?? row.channel, delivery: row.id, event: row.event}
    if (!channel) {
      // Its channel was removed from the configuration since the message was queued.
      this.outbox.failed(row.id, row.attempts, 'channel no longer configured')
      this.log('warn', 'notify:dropped', fields, 'the channel this message was queued for is no longer configured')
      return
    }
    if (Date.now() - row.created_at >= this.options.maxAgeMs) {
      // Queued long ago (e.g. while notifications were switched off): a stale alert is not sent.
      this.forget(row.id)
      this.outbox.failed(row.id, row.attempts, 'expired before delivery')
      this.log('error', 'notify:failed', fields, `expired before delivery (older than ${Math.round(this.options.maxAgeMs / 1000)} s)`)
      return
    }
    const controller = new AbortController()
    const attempt = row.attempts + 1
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(channel.limits?.timeoutMs ?? this.options.timeoutMs)])
    const done = channel
      .send({attempt, createdAt: new Date(row.created_at), event: row.event, id: row.id, payload: JSON.parse(row.payload_json) as unknown}, signal)
      .catch((error: unknown): DeliveryOutcome => ({ok: false, permanent: false, reason: (error as Error).message}))
      .then((outcome) => {
        // Closing aborted it: not an attempt; the row stays pending for the next start.
        if (controller.signal.aborted) return
        // A server's answer or a library's error may echo a credential: redacted before the outbox or a log keeps it.
        this.settle(row, channel, attempt, outcome.ok ? outcome : {...outcome, reason: redactSecrets(outcome.reason)}, {...fields, attempt})
      })
      .catch((error: unknown) => this.log('error', 'notify:outbox-error', fields, (error as Error).message))
      .finally(() => {
        this.inFlight.delete(row.id)
        this.kick()
      })
    this.inFlight.set(row.id, {channel: channel.id, controller, done})
  }

  private settle(row: OutboxRow, channel: Channel, attempt: number, outcome: DeliveryOutcome, fields: Record<string, unknown>): void {
    const maxAttempts = channel.limits?.maxAttempts ?? this.options.maxAttempts
    if (outcome.ok) {
      this.forget(row.id)
      this.outbox.delivered(row.id, attempt)
      this.log('info', 'notify:delivered', {...fields, ...(outcome.detail ? {response: outcome.detail.slice(0, 80)} : {})})
      return
    }
    const age = Date.now() - row.created_at
    if (outcome.permanent) {
      this.forget(row.id)
      this.outbox.failed(row.id, attempt, outcome.reason)
      this.log('error', 'notify:failed', {...fields, permanent: true}, `${outcome.reason}: not retried`)
      return
    }
    if (attempt >= maxAttempts || age >= this.options.maxAgeMs) {
      this.forget(row.id)
      this.outbox.failed(row.id, attempt, outcome.reason)
      this.log('error', 'notify:failed', fields, `${outcome.reason}: given up after ${attempt} attempt(s) over ${Math.round(age / 1000)} s`)
      return
    }
    const delay = outcome.retryAfterMs === undefined ? backoffMs(attempt, this.options) : Math.min(outcome.retryAfterMs, RETRY_AFTER_CAP_MS)
    this.outbox.retryAt(row.id, attempt, Date.now() + delay, outcome.reason)
    this.log('warn', 'notify:retry', {...fields, delay_ms: delay}, outcome.reason)
  }

  /** Stop: abort attempts in flight (their rows stay pending) and wait for them to unwind. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    for (const {controller} of this.inFlight.values()) controller.abort(new Error('delivery engine closing'))
    await Promise.all([...this.inFlight.values()].map((f) => f.done))
  }
}
