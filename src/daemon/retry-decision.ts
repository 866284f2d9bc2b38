import type {RetryPolicy} from './config.js'
import type {JobRetryPolicy} from './job-policy.js'

/** What happens after a failed attempt. */
export type RetryDecision =
  | {action: 'retry'; delayMs: number; maxRetries: number}
  /** failed: not retryable (permanent, no_retry_on) or retries disabled; dead: retryable but retries exhausted. */
  | {action: 'failed' | 'dead'; maxRetries: number; why: string}

/**
 * Whether an error is worth retrying: listed in retry_on, or neither permanent in the catalog nor listed in
 * no_retry_on. A job's own lists replace the daemon's.
 */
export function retryable(code: string, permanent: boolean, daemon: Pick<RetryPolicy, 'retryOn' | 'noRetryOn'>, job?: JobRetryPolicy): boolean {
  const retryOn = job?.retryOn ?? daemon.retryOn
  const noRetryOn = job?.noRetryOn ?? daemon.noRetryOn
  return retryOn.includes(code) || (!permanent && !noRetryOn.includes(code))
}

/**
 * The delay before retry number `n` (1-based), in ms: the backoff (exponential retry_delay x
 * multiplier^(n-1), fixed retry_delay, or none), capped by max_delay, then with full jitter a uniform
 * draw in [0, cap] (`random` is injectable for tests).
 */
export function retryDelayMs(n: number, daemon: Pick<RetryPolicy, 'retryDelay' | 'backoffMultiplier' | 'maxDelay' | 'jitter'>, job?: JobRetryPolicy, random: () => number = Math.random): number {
  const backoff = job?.backoff ?? 'exponential'
  const seconds = backoff === 'none' ? 0 : backoff === 'fixed' ? daemon.retryDelay : daemon.retryDelay * daemon.backoffMultiplier ** (n - 1)
  const capMs = Math.min(daemon.maxDelay, seconds) * 1000
  return Math.round(daemon.jitter === 'full' ? random() * capMs : capMs)
}

/** After attempt `attempt` failed with `code`: retry (and when), or end failed or dead. */
export function decideRetry(attempt: number, code: string, permanent: boolean, daemon: RetryPolicy, job?: JobRetryPolicy, random?: () => number): RetryDecision {
  const maxRetries = job?.maxRetries ?? daemon.maxRetries
  const enabled = job?.maxRetries === undefined ? daemon.enabled : maxRetries > 0
  if (!retryable(code, permanent, daemon, job)) return {action: 'failed', maxRetries, why: permanent ? 'permanent: not retried' : `${code} is in no_retry_on: not retried`}
  if (!enabled || maxRetries === 0) return {action: 'failed', maxRetries, why: 'retries disabled'}
  if (attempt > maxRetries) return {action: 'dead', maxRetries, why: `retries exhausted (${maxRetries})`}
  return {action: 'retry', delayMs: retryDelayMs(attempt, daemon, job, random), maxRetries}
}
