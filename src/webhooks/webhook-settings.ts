/**
 * The top-level `webhooks:` list of a daemon configuration (HyperSDK's lifecycle webhooks: `url, events,
 * headers, timeout, retry, enabled`, plus ours: `secret`/`secret_file`, `progress_interval`), resolved into
 * typed settings: URLs and headers checked like the notification webhooks', the signing secret through
 * the secret sources (never logged).
 */
import {createHash} from 'node:crypto'
import {resolve} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {checkWebhookHeaders, checkWebhookUrl} from '../delivery/webhook-target.js'
import {resolveSecret} from '../secrets/resolve-secret.js'
import {LIFECYCLE_EVENTS, type LifecycleEventName} from './lifecycle-events.js'

/** One `webhooks:` entry as written (schemas/daemon.schema.json validated its shape). */
export interface WebhookKeys {
  url: string
  events?: string[]
  headers?: Record<string, string>
  /** Seconds, or `10s` / `500ms` / `1m`. */
  timeout?: number | string
  /** Retries after the first attempt. */
  retry?: number
  enabled?: boolean
  secret?: string
  secret_file?: string
  /** Seconds between two job.progress deliveries of one job to this hook. */
  progress_interval?: number
}

export interface LifecycleHookSettings {
  /** Stable across restarts (a hash of the URL, and its place among hooks with the same URL): pending outbox rows find their hook again. */
  id: string
  url: string
  /** Only these events (absent: all). */
  events?: LifecycleEventName[]
  headers: Record<string, string>
  timeoutMs: number
  /** 1 + retry. */
  maxAttempts: number
  enabled: boolean
  /** HMAC-SHA256 signing secret (X-Hyper2kvm-Signature). */
  secret?: string
  progressIntervalMs: number
}

/** The seed's examples' values (`timeout: 10s`, `retry: 3`), and ours. */
export const WEBHOOK_DEFAULTS = {progressIntervalSeconds: 30, retry: 3, timeoutMs: 10_000}

/** HyperSDK lists it; hyper2kvm discovers no VMs, so it is accepted and never sent. */
const SEED_ONLY_EVENTS = ['vm.discovered']

const invalid = (index: number, key: string, message: string): H2KError =>
  new H2KError('H2K_JOB_INVALID', `webhooks[${index}].${key}: ${message}`, {details: {key: `webhooks[${index}].${key}`}, suggestions: ['Fix the key in the daemon configuration; see the README section Lifecycle webhooks.']})

const UNIT_MS: Record<string, number> = {m: 60_000, ms: 1, s: 1000}

/** `timeout` in milliseconds: a number of seconds or a duration `10s`, `500ms`, `1m`; at most 5 minutes. */
export function timeoutMsOf(value: number | string | undefined, index = 0): number {
  if (value === undefined) return WEBHOOK_DEFAULTS.timeoutMs
  const match = typeof value === 'number' ? undefined : /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value.trim())
  const ms = typeof value === 'number' ? value * 1000 : match ? Number(match[1]) * UNIT_MS[match[2]!]! : Number.NaN
  if (!Number.isFinite(ms) || ms < 100 || ms > 300_000) throw invalid(index, 'timeout', 'must be between 0.1 s and 5 min: seconds, or a duration like 10s, 500ms, 1m')
  return Math.round(ms)
}

/** Resolve the `webhooks:` list (absent: none). Relative `secret_file` paths are relative to the config file; `warn` gets the plain-secret warnings. */
export async function parseWebhooks(list: WebhookKeys[] | undefined, baseDir: string, warn: (message: string) => void): Promise<LifecycleHookSettings[]> {
  const hooks: LifecycleHookSettings[] = []
  const seen = new Map<string, number>()
  for (const [index, spec] of (list ?? []).entries()) {
    const below = (key: string, message: string) => invalid(index, key, message)
    const url = checkWebhookUrl(spec.url, below)
    const headers = checkWebhookHeaders(spec.headers, below)
    let events: LifecycleEventName[] | undefined
    if (spec.events !== undefined) {
      const unknown = spec.events.filter((e) => !(LIFECYCLE_EVENTS as readonly string[]).includes(e) && !SEED_ONLY_EVENTS.includes(e))
      // A typo would be a hook that silently never fires.
      if (unknown.length > 0) throw below('events', `unknown event ${unknown.map((e) => JSON.stringify(e)).join(', ')} (known: ${LIFECYCLE_EVENTS.join(', ')})`)
      for (const e of spec.events.filter((x) => SEED_ONLY_EVENTS.includes(x))) warn(`webhooks[${index}].events: ${e} is never sent (hyper2kvm does not discover VMs)`)
      events = spec.events.filter((e): e is LifecycleEventName => (LIFECYCLE_EVENTS as readonly string[]).includes(e))
    }
    const secret = await resolveSecret({file: spec.secret_file === undefined ? undefined : resolve(baseDir, spec.secret_file), name: `webhooks.${index}.secret`, value: spec.secret}, warn)
    const digest = createHash('sha256').update(url).digest('hex').slice(0, 12)
    const nth = seen.get(digest) ?? 0
    seen.set(digest, nth + 1)
    hooks.push({
      enabled: spec.enabled ?? true,
      headers,
      id: `lifecycle:${digest}${nth === 0 ? '' : `-${nth}`}`,
      maxAttempts: (spec.retry ?? WEBHOOK_DEFAULTS.retry) + 1,
      progressIntervalMs: Math.round((spec.progress_interval ?? WEBHOOK_DEFAULTS.progressIntervalSeconds) * 1000),
      timeoutMs: timeoutMsOf(spec.timeout, index),
      url,
      ...(events === undefined ? {} : {events}),
      ...(secret === undefined ? {} : {secret: secret.value}),
    })
  }
  return hooks
}
