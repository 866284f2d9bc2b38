import {H2KError} from '@hyper2kvm/plugin-api'

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
  w: 7 * 24 * 60 * 60 * 1000,
}

const DURATION = /^(\d+(?:\.\d+)?)\s*([smhdw])$/

/**
 * A duration as the retention flags take it: a positive number and one unit, `45s`, `90m`, `12h`, `30d`
 * or `2w` (case-insensitive, decimals allowed: `1.5d`). Returns milliseconds.
 */
export function parseDuration(text: string, flag = '--older-than'): number {
  const match = DURATION.exec(text.trim().toLowerCase())
  const ms = match ? Number(match[1]) * UNIT_MS[match[2]!]! : Number.NaN
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new H2KError('H2K_USAGE', `${flag} ${JSON.stringify(text)} is not a duration: expected a positive number and one unit (s, m, h, d or w).`, {
      details: {flag, value: text},
      suggestions: [`Write it like ${flag} 30d (days), 12h (hours), 90m (minutes), 2w (weeks) or 45s (seconds).`],
    })
  }
  return ms
}

/** The instant `duration` before `now`: entries dated before it are "older than" the duration. */
export function cutoffBefore(durationMs: number, now = Date.now()): Date {
  return new Date(now - durationMs)
}
