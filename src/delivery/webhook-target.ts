/**
 * The checks every webhook target passes (notification webhooks and lifecycle webhooks alike): an http(s)
 * URL without user info, registered as a secret (its path or query often is the credential), and header
 * names and values fetch will accept — refused here with messages that never quote them, since fetch's own
 * errors would — credential headers registered so that no log line ever shows them.
 */
import type {H2KError} from '@hyper2kvm/plugin-api'
import {isSecretHeader, registerSecret} from '../secrets/redact.js'

/** Builds the caller's error for a key below the webhook (`url`, `headers`, `headers.<name>`). */
export type InvalidKey = (key: string, message: string) => H2KError

/** `text` as a checked http(s) URL. */
export function checkWebhookUrl(text: string, invalid: InvalidKey): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalid('url', 'is not a URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('url', `only http and https URLs are allowed (not ${url.protocol})`)
  // fetch refuses such a URL with an error that quotes it whole, password included: refused here, unquoted.
  if (url.username !== '' || url.password !== '') throw invalid('url', 'carries a user name or password: put the credential in a header (Authorization) or sign with a webhook secret')
  // Slack and Discord URLs carry their credential in the path, generic ones often in the path or query.
  registerSecret(url.toString())
  return url.toString()
}

/** The custom headers, checked; credential headers' values (and a `Bearer <token>`'s token) registered as secrets. */
export function checkWebhookHeaders(headers: Record<string, string> | undefined, invalid: InvalidKey): Record<string, string> {
  const out = {...headers}
  for (const [name, value] of Object.entries(out)) {
    // fetch would refuse it with an error that quotes the value (a credential, often): refused here, unquoted.
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw invalid('headers', 'a header name is not a valid HTTP token')
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, ''))) throw invalid(`headers.${name}`, 'has a control character (a newline?) or a character beyond Latin-1: not a valid header value')
    if (isSecretHeader(name)) {
      registerSecret(value.trim())
      const credential = /^\S+\s+(\S+)$/.exec(value.trim())?.[1]
      if (credential) registerSecret(credential)
    }
  }
  return out
}
