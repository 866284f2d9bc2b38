import {randomUUID} from 'node:crypto'

/** What an incoming X-Request-Id may look like to be reused: short, and nothing a log line or header must escape. */
const SANE = /^[A-Za-z0-9._:@+=-]{1,128}$/

/**
 * The request's id: the caller's `X-Request-Id` when it is sane (so a proxy's id traces through to our log
 * lines), else a new one. An id that is too long or carries other characters is replaced, never echoed.
 */
export function requestIdOf(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header
  return value !== undefined && SANE.test(value) ? value : `req-${randomUUID()}`
}
