import {H2KError} from '@hyper2kvm/plugin-api'

import {boundedQuote, dayOfDate, hostZone, instantOf, localDayOf, requireZone, weekday} from './zoned-time.js'

/**
 * A time window: when jobs may start ("22:00-06:00", only some days of the week, never on holidays, in an
 * IANA zone). The string form is the hours only.
 */
export type WindowSpec = string | {hours: string; days?: string[]; holidays?: string[]; timezone?: string}

export interface TimeWindow {
  /** Whether the window is open at the instant (ms epoch). */
  contains(ms: number): boolean
  /** The first instant at or after `ms` when the window is open (`ms` itself when it is open now). */
  nextOpen(ms: number): number
  /**
   * When the open period that contains `ms` ends (periods that touch, such as 00:00-24:00 on consecutive
   * days, count as one); for an instant outside the window, when the next open period ends. Infinity when
   * the window stays open for more than 400 days (00:00-24:00 every day, no holiday ahead).
   */
  closesAt(ms: number): number
  /** For people: "22:00-06:00 mon-fri America/Chicago, not on 2 holidays". */
  describe(): string
}

export interface ParseWindowOptions {
  /** Where the spec comes from, for messages ("jobs[2].window"). Default "window". */
  where?: string
  /** H2K_JOB_INVALID for documents (the default), H2K_USAGE for command-line flags. */
  code?: 'H2K_JOB_INVALID' | 'H2K_USAGE'
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const
const MAX_HOLIDAYS = 1000
const MAX_DAY_ITEMS = 14
/** Bounds every search over days; a window opens at least once a week outside the (bounded) holidays. */
const SEARCH_SLACK_DAYS = 8
/** A window open for longer than this without a break "never closes" (closesAt answers Infinity). */
const MAX_MERGE_DAYS = 400

/**
 * Parse and validate a window. Semantics (README "Time windows"):
 * - `hours` "HH:MM-HH:MM" in the window's zone; an end before the start crosses midnight; "24:00" is allowed
 *   as an end; equal start and end are refused.
 * - A window belongs to the day it OPENS on: "22:00-06:00" with days [fri] opens Friday 22:00 and runs until
 *   Saturday 06:00; it does not open on Saturday. `days` and `holidays` decide only whether a window opens
 *   on a day; one already open runs to its end even into a holiday.
 * - DST: a start or end is the first instant whose wall clock reads that time or later. On a spring-forward
 *   day a skipped time is the moment of the jump, so 01:30-03:00 lasts 30 real minutes and a window wholly
 *   inside the skipped hour does not open; on a fall-back day a repeated time is its first showing, so
 *   01:30-03:00 lasts 2 h 30 min.
 */
export function parseWindow(spec: WindowSpec, defaultZone?: string, options: ParseWindowOptions = {}): TimeWindow {
  const where = options.where ?? 'window'
  const code = options.code ?? 'H2K_JOB_INVALID'
  const fail = (key: string, message: string): never => {
    throw new H2KError(code, `${key}: ${message}`, {
      details: {key, problem: message},
      suggestions: ['A window is "HH:MM-HH:MM" or {hours, days: [mon-fri, sun], holidays: [YYYY-MM-DD], timezone: Area/City}; see the README section Time windows.'],
    })
  }
  const object = typeof spec === 'string' ? {hours: spec} : spec
  if (object === null || typeof object !== 'object' || Array.isArray(object)) return fail(where, 'must be "HH:MM-HH:MM" or a mapping with hours, days, holidays and timezone.')
  for (const key of Object.keys(object)) {
    if (!['hours', 'days', 'holidays', 'timezone'].includes(key)) fail(`${where}`, `unknown key ${boundedQuote(key)} (known: hours, days, holidays, timezone).`)
  }
  const hoursKey = typeof spec === 'string' ? where : `${where}.hours`
  if (typeof object.hours !== 'string') return fail(hoursKey, 'is required: "HH:MM-HH:MM" such as "22:00-06:00".')
  const match = /^(\d{2}):(\d{2})-(\d{2}):(\d{2})$/.exec(object.hours.trim())
  if (!match) return fail(hoursKey, `${boundedQuote(object.hours)} is not "HH:MM-HH:MM" (such as "22:00-06:00").`)
  const start = Number(match[1]) * 60 + Number(match[2])
  const end = Number(match[3]) * 60 + Number(match[4])
  if (Number(match[1]) > 23 || Number(match[2]) > 59) fail(hoursKey, `${boundedQuote(object.hours)}: the start must be 00:00..23:59.`)
  if (Number(match[4]) > 59 || end > 24 * 60) fail(hoursKey, `${boundedQuote(object.hours)}: the end must be 00:00..24:00.`)
  if (start === end) fail(hoursKey, `${boundedQuote(object.hours)} opens and closes at the same time; use "00:00-24:00" for whole days.`)

  const days = parseDays(object.days, `${where}.days`, fail)
  const holidays = parseHolidays(object.holidays, `${where}.holidays`, fail)
  let zone: string
  if (object.timezone === undefined) zone = defaultZone === undefined ? hostZone() : requireZone(defaultZone, `${where}.timezone`, code)
  else if (typeof object.timezone === 'string') zone = requireZone(object.timezone, `${where}.timezone`, code)
  else return fail(`${where}.timezone`, 'must be an IANA zone name such as "America/Chicago".')

  return new ZonedWindow(start, end, days, holidays, zone)
}

type Fail = (key: string, message: string) => never

function parseDays(value: unknown, key: string, fail: Fail): ReadonlySet<number> {
  if (value === undefined) return new Set([0, 1, 2, 3, 4, 5, 6])
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_DAY_ITEMS) return fail(key, `must be a list of 1..${MAX_DAY_ITEMS} days: mon..sun or ranges such as mon-fri.`)
  const days = new Set<number>()
  for (const item of value as unknown[]) {
    if (typeof item !== 'string') return fail(key, `${boundedQuote(item)} is not a day (mon..sun or a range such as mon-fri).`)
    for (const token of item.split(',')) {
      const [from, to, extra] = token.trim().toLowerCase().split('-')
      const first = DAY_NAMES.indexOf(from as (typeof DAY_NAMES)[number])
      const last = to === undefined ? first : DAY_NAMES.indexOf(to as (typeof DAY_NAMES)[number])
      if (first < 0 || last < 0 || extra !== undefined) return fail(key, `${boundedQuote(item)} is not a day (mon..sun or a range such as mon-fri).`)
      // A range may wrap the week: fri-mon is fri, sat, sun, mon.
      for (let day = first; ; day = (day + 1) % 7) {
        days.add(day)
        if (day === last) break
      }
    }
  }
  return days
}

function parseHolidays(value: unknown, key: string, fail: Fail): ReadonlySet<number> {
  if (value === undefined) return new Set()
  if (!Array.isArray(value) || value.length > MAX_HOLIDAYS) return fail(key, `must be a list of at most ${MAX_HOLIDAYS} dates YYYY-MM-DD.`)
  const holidays = new Set<number>()
  for (const item of value as unknown[]) {
    const day = typeof item === 'string' ? dayOfDate(item) : undefined
    if (day === undefined) return fail(key, `${boundedQuote(item)} is not a date YYYY-MM-DD.`)
    holidays.add(day)
  }
  return holidays
}

interface Period {
  open: number
  close: number
}

class ZonedWindow implements TimeWindow {
  private readonly lastHoliday: number

  constructor(
    private readonly start: number,
    private readonly end: number,
    private readonly days: ReadonlySet<number>,
    private readonly holidays: ReadonlySet<number>,
    private readonly zone: string,
  ) {
    this.lastHoliday = Math.max(Number.NEGATIVE_INFINITY, ...holidays)
  }

  contains(ms: number): boolean {
    return this.periodAt(ms) !== undefined
  }

  nextOpen(ms: number): number {
    if (this.periodAt(ms)) return ms
    const today = localDayOf(this.zone, ms)
    for (let day = today - 1; day <= this.searchEnd(today); day++) {
      const period = this.period(day)
      if (period && period.open >= ms) return period.open
    }
    throw new Error(`time window ${this.describe()} never opens (bug: the search is bounded by the holidays)`)
  }

  closesAt(ms: number): number {
    let current = this.periodAt(this.nextOpen(ms))
    if (!current) throw new Error(`time window ${this.describe()}: no period at its own next opening (bug)`)
    let day = localDayOf(this.zone, current.open)
    const end = Math.min(this.searchEnd(day), day + MAX_MERGE_DAYS)
    // Merge periods that touch (00:00-24:00 on consecutive days; 12:00-12:00 is refused).
    for (day += 1; day <= end; day++) {
      const next = this.period(day)
      if (!next || next.open > current.close) return current.close
      if (next.close > current.close) current = {open: current.open, close: next.close}
    }
    return Number.POSITIVE_INFINITY
  }

  describe(): string {
    const holidays = this.holidays.size === 0 ? '' : `, not on ${this.holidays.size} holiday${this.holidays.size === 1 ? '' : 's'}`
    const days = this.days.size === 7 ? '' : ` ${describeDays(this.days)}`
    return `${clock(this.start)}-${clock(this.end)}${days} ${this.zone}${holidays}`
  }

  /** The open period containing `ms`, if any: the one opening today or, crossing midnight, yesterday. */
  private periodAt(ms: number): Period | undefined {
    const today = localDayOf(this.zone, ms)
    for (const day of [today - 1, today]) {
      const period = this.period(day)
      if (period && period.open <= ms && ms < period.close) return period
    }
    return undefined
  }

  /** The period opening on a local day, or undefined when the window does not open that day. */
  private period(day: number): Period | undefined {
    if (!this.days.has(weekday(day)) || this.holidays.has(day)) return undefined
    const open = instantOf(this.zone, day, this.start)
    const close = this.end > this.start ? instantOf(this.zone, day, this.end) : instantOf(this.zone, day + 1, this.end)
    return close > open ? {open, close} : undefined
  }

  /** The last day a search from `day` needs to look at: a week past the later of it and the last holiday. */
  private searchEnd(day: number): number {
    return Math.max(day, this.lastHoliday) + SEARCH_SLACK_DAYS
  }
}

function clock(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`
}

/** Days as compact Monday-first ranges: "mon-fri", "sat,sun", "mon,wed-fri". */
function describeDays(days: ReadonlySet<number>): string {
  const mondayFirst = [1, 2, 3, 4, 5, 6, 0].map((day) => ({day, name: DAY_NAMES[day] as string}))
  const runs: string[] = []
  let index = 0
  while (index < mondayFirst.length) {
    const first = mondayFirst[index]
    if (!first || !days.has(first.day)) {
      index++
      continue
    }
    let last = index
    while (days.has(mondayFirst[last + 1]?.day ?? -1)) last++
    const final = mondayFirst[last]?.name ?? first.name
    runs.push(last === index ? first.name : last === index + 1 ? `${first.name},${final}` : `${first.name}-${final}`)
    index = last + 1
  }
  return runs.join(',')
}
