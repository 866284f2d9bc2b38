/** Token-bucket settings: `burst` requests at once, refilled at `requestsPerMinute`. */
export interface RateLimitSettings {
  requestsPerMinute: number
  burst: number
}

/** Buckets kept at most; the least recently used goes first (client addresses cannot grow the map without bound). */
const MAX_BUCKETS = 10_000

/**
 * A token bucket per key (a bearer token's digest, or a client address when there is no token): `take`
 * says whether one more request may go now, or after how many seconds (the 429's Retry-After).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, {tokens: number; at: number}>()
  private readonly perMs: number

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.perMs = settings.requestsPerMinute / 60_000
  }

  take(key: string): {ok: true} | {ok: false; retryAfterSeconds: number} {
    const now = this.now()
    const bucket = this.buckets.get(key) ?? {at: now, tokens: this.settings.burst}
    bucket.tokens = Math.min(this.settings.burst, bucket.tokens + (now - bucket.at) * this.perMs)
    bucket.at = now
    this.buckets.delete(key)
    this.buckets.set(key, bucket)
    if (this.buckets.size > MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!)
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return {ok: true}
    }
    return {ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000))}
  }
}
