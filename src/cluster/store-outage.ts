import {H2KError} from '@hyper2kvm/plugin-api'
import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import {mapForeignError} from '../errors/map-foreign-error.js'

/** How long the same error of one timer path stays quiet after it was logged. */
const REPEAT_LOG_MS = 60_000

export const isStoreUnavailable = (error: unknown): boolean => error instanceof H2KError && error.code === 'H2K_STORE_UNAVAILABLE'

/**
 * The daemon's view of a store outage: every timer and event path (the pump, intake, control replies, stats,
 * the heartbeat) that meets H2K_STORE_UNAVAILABLE reports it here and tries again on its next tick, never
 * crashing; the outage is logged once when it begins (`store:unavailable`) and once when the store answers
 * again (`store:available`).
 */
export class StoreOutage {
  private since?: number
  /** The last other error of each path, so one that repeats on every tick is logged once a minute, not ten times a second. */
  private readonly repeating = new Map<string, {loggedAt: number; message: string; repeats: number}>()

  constructor(private readonly log: DaemonLogFn) {}

  get down(): boolean {
    return this.since !== undefined
  }

  /** `error` from a store call in `where`: true (and logged once per outage) when it is H2K_STORE_UNAVAILABLE. */
  failed(error: unknown, where: string): boolean {
    if (!isStoreUnavailable(error)) return false
    if (this.since === undefined) {
      this.since = Date.now()
      this.log('warn', 'store:unavailable', {where}, `${(error as H2KError).message} (retried on every tick)`)
    }
    return true
  }

  /** A store call succeeded: an outage is over. */
  answered(): void {
    if (this.since === undefined) return
    const downMs = Date.now() - this.since
    this.since = undefined
    this.log('info', 'store:available', {down_ms: downMs})
  }

  /**
   * Run `fn` from a timer or event path: H2K_STORE_UNAVAILABLE is reported (undefined returned, the next
   * tick tries again); any other error is logged as `<where>:error` (the same one again only after a minute,
   * with how often it repeated meanwhile); nothing is thrown.
   */
  run<T>(where: string, fn: () => T): T | undefined {
    try {
      const value = fn()
      this.answered()
      this.repeating.delete(where)
      return value
    } catch (error) {
      if (!this.failed(error, where)) this.otherError(where, mapForeignError(error).message)
      return undefined
    }
  }

  private otherError(where: string, message: string): void {
    const now = Date.now()
    const last = this.repeating.get(where)
    if (last && last.message === message && now - last.loggedAt < REPEAT_LOG_MS) {
      last.repeats++
      return
    }
    const repeats = last?.message === message ? last.repeats : 0
    this.log('error', `${where}:error`, repeats > 0 ? {repeated: repeats} : {}, message)
    this.repeating.set(where, {loggedAt: now, message, repeats: 0})
  }
}
