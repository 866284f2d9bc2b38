/**
 * Keeping secrets out of text: resolved values are registered and scrubbed from any message, and a
 * configuration object has the values of its secret keys replaced before it is shown.
 */
export const REDACTED = '[REDACTED]'

const known = new Set<string>()

/** Remember a secret value so that `redactSecrets` removes it from any text. */
export function registerSecret(value: string): void {
  if (value.length >= 4) known.add(value)
}

/** Replace every registered secret value in `text` with `[REDACTED]` (longest first: one may contain another). */
export function redactSecrets(text: string): string {
  let out = text
  for (const value of [...known].sort((a, b) => b.length - a.length)) out = out.split(value).join(REDACTED)
  return out
}

const SECRET_KEY = /password|secret|token/i
/** HTTP headers that carry credentials (webhook_headers): also `*-Key` (X-Functions-Key, Ocp-Apim-Subscription-Key). */
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie)$|token|secret|password|api[-_]?key|(^|-)key$|auth|signature|credential/i

/** A configuration key whose value is a secret (`smtp_password`, `webhook_secret`, `token` …); `*_file` keys name a file and are not. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) && !key.endsWith('_file')
}

/** A key naming a URL (`webhook_url`, `url`): its user info, path and query may be credentials (Slack and Discord put theirs in the path). */
const URL_KEY = /(^|_)url$/i

/** `https://hooks.slack.com/services/T…/B…/XXX` → `https://hooks.slack.com/[REDACTED]`: where it goes, not how it gets in. */
export function redactUrl(text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return text // not a URL (a placeholder): nothing to hide in it
  }
  const hidden = url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || url.pathname.replace(/\/+$/, '') !== ''
  return hidden ? `${url.protocol}//${url.host}/${REDACTED}` : text
}

/** A header whose value is a credential (`Authorization`, `X-Api-Key`, `X-Auth-Token` …). */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name)
}

/**
 * Whether the value at this path of a configuration is secret or may hold a credential (a secret key at any
 * depth, a credential header of a `*headers` map, a `*url`): messages about it must not quote it.
 */
export function isSecretPath(path: ReadonlyArray<string | number>): boolean {
  const keys = path.filter((p): p is string => typeof p === 'string')
  const last = keys.at(-1)
  const parent = path.length >= 2 && typeof path.at(-2) === 'string' ? (path.at(-2) as string) : undefined
  return keys.some((k) => isSecretKey(k)) || (last !== undefined && URL_KEY.test(last)) || (parent !== undefined && /headers$/i.test(parent) && last !== undefined && isSecretHeader(last))
}

/**
 * A copy of a configuration value with every secret replaced by `[REDACTED]`: the values of secret keys at
 * any depth, the credential headers of any `*headers` map, all but the origin of `*url` values, and any
 * registered secret inside other strings.
 */
export function redactConfig<T>(value: T): T {
  return redactValue(value, undefined, false) as T
}

function redactValue(value: unknown, key: string | undefined, inHeaders: boolean): unknown {
  if (key !== undefined && (isSecretKey(key) || (inHeaders && isSecretHeader(key))) && value !== null && value !== undefined && value !== '') {
    return typeof value === 'object' ? redactValue(value, undefined, false) : REDACTED
  }
  if (Array.isArray(value)) return value.map((item) => redactValue(item, undefined, false))
  if (value !== null && typeof value === 'object') {
    const headers = key !== undefined && /headers$/i.test(key)
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactValue(v, k, headers)]))
  }
  if (typeof value !== 'string') return value
  return key !== undefined && URL_KEY.test(key) ? redactUrl(redactSecrets(value)) : redactSecrets(value)
}
