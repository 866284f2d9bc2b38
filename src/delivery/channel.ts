/**
 * A place messages are delivered to (a webhook, a mailbox): the delivery engine's only view of it. The
 * engine owns persistence, retries and timeouts; a channel makes one attempt and says how it went.
 */

/** One message as a channel receives it; `payload` is whatever the producer queued (plain JSON). */
export interface DeliveryMessage {
  /** Unique per message and channel, stable across attempts (receivers deduplicate on it). */
  id: string
  /** What it is about (e.g. `conversion_failure`); producers choose the names. */
  event: string
  createdAt: Date
  /** 1 for the first attempt. */
  attempt: number
  payload: unknown
}

export type DeliveryOutcome =
  | {ok: true; detail?: string}
  /** `permanent`: retrying cannot help (a 4xx, a refused recipient); `retryAfterMs`: the receiver asked for a delay. */
  | {ok: false; permanent: boolean; reason: string; retryAfterMs?: number}

/** A channel's own limits, where they differ from the engine's (a lifecycle webhook's `timeout` and `retry`). */
export interface ChannelLimits {
  /** Per-attempt timeout. */
  timeoutMs?: number
  /** Attempts per message before it is given up. */
  maxAttempts?: number
  /** Attempts in flight at once for this channel: 1 keeps its messages in the order they were queued while it accepts them. */
  concurrency?: number
}

export interface Channel {
  /** Stable across restarts: pending outbox rows are matched to their channel by it. */
  readonly id: string
  /** For logs and `notify test`: type and host, never a credential or a URL path. */
  readonly label: string
  /** Limits of this channel (default: the engine's). */
  readonly limits?: ChannelLimits
  /** Whether this channel wants messages about `event` (default: all). */
  accepts?(event: string): boolean
  /** One attempt; never throws; stops when `signal` aborts. */
  send(message: DeliveryMessage, signal: AbortSignal): Promise<DeliveryOutcome>
}
