import {H2KError} from '@hyper2kvm/plugin-api'

/**
 * Wall-clock arithmetic in an IANA time zone with nothing but Intl: the zone's UTC offset at an instant,
 * the local civil day of an instant, and the instant of a local day + minute-of-day.
 *
 * Days are "day numbers": days since 1970-01-01 in the proleptic Gregorian calendar (so 0 is a Thursday).
 */

const DAY_MS = 86_400_000
const MINUTE_MS = 60_000

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter(zone: string): Intl.DateTimeFormat {
  let format = formatters.get(zone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    })
    formatters.set(zone, format)
  }
  return format
}

/** The canonical name of an IANA zone, or undefined when Intl does not know it. */
export function canonicalZone(zone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', {timeZone: zone}).resolvedOptions().timeZone
  } catch (error) {
    if (error instanceof RangeError) return undefined
    throw error
  }
}

/** The host's time zone (what a window without `timezone` uses unless a caller passes another default). */
export function hostZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone
}

/** The zone's offset from UTC at an instant, in ms (Chicago in winter: -6 h). Second precision. */
export function zoneOffset(zone: string, at: number): number {
  const seconds = Math.floor(at / 1000) * 1000
  const parts: Record<string, number> = {}
  for (const part of formatter(zone).formatToParts(new Date(seconds))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value)
  }
  const wall = Date.UTC(parts.year ?? 1970, (parts.month ?? 1) - 1, parts.day ?? 1, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
  return wall - seconds
}

/** The local civil day (day number) of an instant. */
export function localDayOf(zone: string, at: number): number {
  return Math.floor((at + zoneOffset(zone, at)) / DAY_MS)
}

/** Day of week of a day number: 0 = Sunday … 6 = Saturday. */
export function weekday(day: number): number {
  return (((day + 4) % 7) + 7) % 7
}

/** The day number of a YYYY-MM-DD date, or undefined when it is no real date. */
export function dayOfDate(text: string): number | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text)
  if (!match) return undefined
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])]
  const ms = Date.UTC(year, month - 1, day)
  const date = new Date(ms)
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined
  return ms / DAY_MS
}

/**
 * The instant a local day + minute-of-day (0..1440) begins: "the first instant whose wall clock reads that
 * time or later". So a time the clock skips (02:30 on a spring-forward day, 02:00 jumps to 03:00) is the
 * moment of the jump (03:00 new time), and a time the clock shows twice (01:30 on a fall-back day) is its
 * first showing. The mapping never goes backwards as the local time grows, so a window's close is never
 * before its open.
 */
export function instantOf(zone: string, day: number, minuteOfDay: number): number {
  const local = day * DAY_MS + minuteOfDay * MINUTE_MS
  const offsets = new Set([zoneOffset(zone, local - DAY_MS), zoneOffset(zone, local), zoneOffset(zone, local + DAY_MS)])
  let earliest: number | undefined
  for (const offset of offsets) {
    const candidate = local - offset
    if (zoneOffset(zone, candidate) === offset && (earliest === undefined || candidate < earliest)) earliest = candidate
  }
  if (earliest !== undefined) return earliest
  // A gap: the wall clock jumps over `local`. Find the jump between the instant read with the larger
  // offset (before the jump in wall time) and the one read with the smaller; it is where the wall clock
  // first reads `local` or later.
  const sorted = [...offsets].sort((a, b) => a - b)
  let low = local - (sorted.at(-1) ?? 0)
  let high = local - (sorted[0] ?? 0)
  if (low > high) [low, high] = [high, low]
  // Invariant: wall(low) < local <= wall(high); bisect to the second.
  while (high - low > 1000) {
    const middle = Math.floor((low + high) / 2000) * 1000
    if (middle <= low || middle >= high) break
    if (middle + zoneOffset(zone, middle) >= local) high = middle
    else low = middle
  }
  return high
}

/** Throws unless `zone` is an IANA zone Intl knows; returns its canonical name. */
export function requireZone(zone: string, where: string, code: 'H2K_JOB_INVALID' | 'H2K_USAGE'): string {
  const known = /^[A-Za-z0-9_+\-/]{1,64}$/.test(zone) ? canonicalZone(zone) : undefined
  if (!known) {
    const problem = `${boundedQuote(zone)} is not an IANA time zone (such as "Europe/Berlin", "America/Chicago" or "UTC").`
    throw new H2KError(code, `${where}: ${problem}`, {details: {key: where, problem}})
  }
  return known
}

/** A short, escaped rendering of a value from a document, never longer than ~40 characters. */
export function boundedQuote(value: unknown): string {
  const text = typeof value === 'string' ? value : typeof value
  return JSON.stringify(text.length > 32 ? `${text.slice(0, 32)}…` : text)
}
