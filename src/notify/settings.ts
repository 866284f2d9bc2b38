/**
 * The `notifications:` keys of a daemon configuration (the seed's 17 keys, plus ours beside them), resolved
 * into typed settings: secrets through resolveSecret, URLs checked, the SMTP security mode made explicit.
 */
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {resolve} from 'node:path'

import type {DeliveryOptions} from '../delivery/delivery-engine.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {checkWebhookHeaders, checkWebhookUrl} from '../delivery/webhook-target.js'
import {resolveSecret} from '../secrets/resolve-secret.js'

export type WebhookType = 'slack' | 'discord' | 'generic'
export type SmtpSecurity = 'starttls' | 'tls' | 'none'
/** What a notification is about (the seed's generic `event` values, plus `test`). */
export type NotifyEvent = 'conversion_success' | 'conversion_failure' | 'retry_success' | 'daemon_stall' | 'test'
export const NOTIFY_EVENTS: readonly NotifyEvent[] = ['conversion_success', 'conversion_failure', 'retry_success', 'daemon_stall', 'test']

export interface WebhookSettings {
  /** Stable across restarts (type + URL hash): pending outbox rows find their channel again. */
  id: string
  url: string
  type: WebhookType
  headers: Record<string, string>
  /** HMAC-SHA256 signing secret (X-Hyper2kvm-Signature). */
  secret?: string
  /** Only these events (default: all that notify_on_* lets through). */
  events?: NotifyEvent[]
}

export interface EmailSettings {
  id: string
  server: string
  port: number
  security: SmtpSecurity
  username?: string
  password?: string
  from: string
  to: string[]
  subjectPrefix: string
  /** PEM text of an extra CA to trust (smtp_tls_ca_file). */
  tlsCa?: string
  /** smtp_tls_insecure: the server certificate is NOT checked (unsafe; for tests and labs). */
  tlsInsecure: boolean
}

export interface NotificationSettings {
  enabled: boolean
  notifyOnSuccess: boolean
  notifyOnFailure: boolean
  notifyOnStall: boolean
  /** Seconds without progress (while jobs are queued or running) before the daemon counts as stalled. */
  stallCheckInterval: number
  webhooks: WebhookSettings[]
  email?: EmailSettings
  /** delivery_*: how hard the outbox tries (attempts, age, per-attempt timeout, first backoff). */
  delivery: Partial<DeliveryOptions>
  /** Things to log once the daemon starts (plain-text secrets in the file …). */
  warnings: string[]
}

interface ExtraWebhookKeys {
  url: string
  type?: WebhookType
  headers?: Record<string, string>
  secret?: string
  secret_file?: string
  events?: NotifyEvent[]
}

/** The keys as written (schemas/daemon.schema.json validated them). */
export interface NotificationKeys {
  enabled?: boolean
  webhook_url?: string
  webhook_type?: WebhookType
  webhook_headers?: Record<string, string>
  webhook_secret?: string
  webhook_secret_file?: string
  webhooks?: ExtraWebhookKeys[]
  notify_on_success?: boolean
  notify_on_failure?: boolean
  notify_on_stall?: boolean
  stall_check_interval?: number
  email_enabled?: boolean
  smtp_server?: string
  smtp_port?: number
  smtp_use_tls?: boolean
  smtp_security?: SmtpSecurity
  smtp_username?: string
  smtp_password?: string
  smtp_password_file?: string
  smtp_tls_ca_file?: string
  smtp_tls_insecure?: boolean
  email_from?: string
  email_to?: string | string[]
  email_subject_prefix?: string
  delivery_max_attempts?: number
  delivery_max_age?: number
  delivery_timeout?: number
  delivery_retry_delay?: number
}

/** The seed's defaults. */
export const NOTIFICATION_DEFAULTS = {
  emailSubjectPrefix: '[Hyper2KVM]',
  notifyOnFailure: true,
  notifyOnStall: true,
  notifyOnSuccess: false,
  smtpPort: 587,
  stallCheckInterval: 3600,
  webhookType: 'generic' as WebhookType,
}

const invalid = (key: string, message: string): H2KError =>
  new H2KError('H2K_JOB_INVALID', `notifications.${key}: ${message}`, {details: {key: `notifications.${key}`}, suggestions: ['Fix the key in the daemon configuration; see the README section Notifications.']})

function isHttpUrl(text: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(text).protocol)
  } catch {
    return false
  }
}

const channelId = (kind: string, what: string): string => `${kind}:${createHash('sha256').update(what).digest('hex').slice(0, 12)}`

async function webhook(key: string, spec: ExtraWebhookKeys, warnings: string[]): Promise<WebhookSettings> {
  const below = (sub: string, message: string) => invalid(`${key}${sub}`, message)
  const url = checkWebhookUrl(spec.url, below)
  const type = spec.type ?? NOTIFICATION_DEFAULTS.webhookType
  const headers = checkWebhookHeaders(spec.headers, below)
  const secret = await resolveSecret({file: spec.secret_file, name: `notifications.${key}secret`, value: spec.secret}, (m) => warnings.push(m))
  return {headers, id: channelId(type, url), type, url, ...(secret ? {secret: secret.value} : {}), ...(spec.events ? {events: spec.events} : {})}
}

function security(keys: NotificationKeys, port: number): SmtpSecurity {
  if (keys.smtp_security) return keys.smtp_security
  if (port === 465) return 'tls'
  return keys.smtp_use_tls === false ? 'none' : 'starttls'
}

async function email(keys: NotificationKeys, baseDir: string, warnings: string[]): Promise<EmailSettings> {
  const missing = (['smtp_server', 'email_from', 'email_to'] as const).filter((k) => keys[k] === undefined || keys[k]?.length === 0)
  if (missing.length > 0) throw invalid(missing[0]!, `email_enabled is true but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not set`)
  const port = keys.smtp_port ?? NOTIFICATION_DEFAULTS.smtpPort
  const password = await resolveSecret(
    {file: keys.smtp_password_file === undefined ? undefined : resolve(baseDir, keys.smtp_password_file), name: 'notifications.smtp_password', value: keys.smtp_password},
    (m) => warnings.push(m),
  )
  if (password && keys.smtp_username === undefined) throw invalid('smtp_password', 'is set but smtp_username is not')
  const to = typeof keys.email_to === 'string' ? keys.email_to.split(',').map((a) => a.trim()).filter(Boolean) : keys.email_to!
  const mode = security(keys, port)
  if (mode === 'none' && password) warnings.push('notifications: the SMTP password is sent without TLS (smtp_security: none / smtp_use_tls: false)')
  if (keys.smtp_tls_insecure) warnings.push('notifications.smtp_tls_insecure: the SMTP server certificate is not checked')
  return {
    from: keys.email_from!,
    id: channelId('email', `${keys.smtp_server}:${port}:${to.join(',')}`),
    port,
    security: mode,
    server: keys.smtp_server!,
    subjectPrefix: keys.email_subject_prefix ?? NOTIFICATION_DEFAULTS.emailSubjectPrefix,
    tlsInsecure: keys.smtp_tls_insecure ?? false,
    to,
    ...(keys.smtp_username === undefined ? {} : {username: keys.smtp_username}),
    ...(password ? {password: password.value} : {}),
    ...(keys.smtp_tls_ca_file ? {tlsCa: await readFile(resolve(baseDir, keys.smtp_tls_ca_file), 'utf8')} : {}),
  }
}

/** Resolve the `notifications:` keys (absent: notifications off). Relative `*_file` paths are relative to the config file. */
export async function parseNotificationSettings(keys: NotificationKeys | undefined, baseDir: string): Promise<NotificationSettings> {
  const k = keys ?? {}
  const warnings: string[] = []
  const file = (value: string | undefined): string | undefined => (value === undefined ? undefined : resolve(baseDir, value))
  const webhooks: WebhookSettings[] = []
  if (k.webhook_url !== undefined && !isHttpUrl(k.webhook_url)) {
    // The seed's production config ships `webhook_url: "YOUR_WEBHOOK_URL"`: it starts, that channel stays off, loudly.
    warnings.push('notifications.webhook_url is not an http(s) URL (a placeholder?): that webhook is DISABLED until it is set; `hyper2kvm notify test` checks the channels')
  } else if (k.webhook_url !== undefined) {
    webhooks.push(await webhook('webhook_', {headers: k.webhook_headers, secret: k.webhook_secret, secret_file: file(k.webhook_secret_file), type: k.webhook_type, url: k.webhook_url}, warnings))
  } else if (k.webhook_secret !== undefined || k.webhook_secret_file !== undefined || k.webhook_headers !== undefined) {
    throw invalid('webhook_url', 'webhook_headers / webhook_secret are set but webhook_url is not')
  }
  for (const [index, spec] of (k.webhooks ?? []).entries()) {
    webhooks.push(await webhook(`webhooks.${index}.`, {...spec, secret_file: file(spec.secret_file)}, warnings))
  }
  const delivery: Partial<DeliveryOptions> = {
    ...(k.delivery_max_attempts === undefined ? {} : {maxAttempts: k.delivery_max_attempts}),
    ...(k.delivery_max_age === undefined ? {} : {maxAgeMs: k.delivery_max_age * 1000}),
    ...(k.delivery_timeout === undefined ? {} : {timeoutMs: k.delivery_timeout * 1000}),
    ...(k.delivery_retry_delay === undefined ? {} : {baseDelayMs: k.delivery_retry_delay * 1000}),
  }
  return {
    delivery,
    enabled: k.enabled ?? false,
    notifyOnFailure: k.notify_on_failure ?? NOTIFICATION_DEFAULTS.notifyOnFailure,
    notifyOnStall: k.notify_on_stall ?? NOTIFICATION_DEFAULTS.notifyOnStall,
    notifyOnSuccess: k.notify_on_success ?? NOTIFICATION_DEFAULTS.notifyOnSuccess,
    stallCheckInterval: k.stall_check_interval ?? NOTIFICATION_DEFAULTS.stallCheckInterval,
    warnings,
    webhooks,
    ...(k.email_enabled ? {email: await email(k, baseDir, warnings)} : {}),
  }
}
