import {Cron} from 'croner'

import {H2KError} from '@hyper2kvm/plugin-api'

/** The host's IANA zone (TZ, else the system's): a schedule without `timezone` runs in it. */
export function hostTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone
}

/** An IANA zone name the runtime knows, or H2K_USAGE. */
export function checkTimeZone(zone: string, where: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', {timeZone: zone}).resolvedOptions().timeZone
  } catch {
    throw new H2KError('H2K_USAGE', `${where}: unknown time zone "${zone}".`, {suggestions: ['Use an IANA zone name such as America/Chicago, Europe/Berlin or UTC.']})
  }
}

/**
 * A 5-field cron expression (minute hour day-of-month month day-of-week, Vixie semantics: when both day
 * fields are restricted either matches) evaluated in an IANA time zone by croner. DST as cron does it: a
 * fixed-time job whose time falls in the spring-forward gap runs at the first minute after the gap; one
 * whose time occurs twice in the fall-back hour runs once; interval jobs (steps, wildcards) keep their interval.
 */
export class CronExpression {
  private readonly cron: Cron

  constructor(
    readonly expression: string,
    readonly timeZone: string,
    where = 'cron',
  ) {
    const fields = expression.trim().split(/\s+/)
    if (fields.length !== 5) {
      throw new H2KError('H2K_USAGE', `${where}: "${expression}" has ${fields.length} fields; a schedule takes exactly five (minute hour day-of-month month day-of-week), e.g. "0 2 * * *".`, {
        suggestions: ['Write five space-separated cron fields; seconds and years are not supported.'],
      })
    }
    checkTimeZone(timeZone, where)
    try {
      this.cron = new Cron(fields.join(' '), {mode: '5-part', paused: true, timezone: timeZone})
    } catch (error) {
      throw new H2KError('H2K_USAGE', `${where}: "${expression}" is not a valid cron expression: ${(error as Error).message.replace(/^CronPattern: /, '')}`, {
        suggestions: ['Five fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or jan-dec) day-of-week (0-7 or sun-sat); * , - / allowed.'],
      })
    }
  }

  /** The first run strictly after `afterMs` (ms epoch), or undefined when the expression never matches again. */
  next(afterMs: number): number | undefined {
    return this.cron.nextRun(new Date(afterMs))?.getTime()
  }

  /** The last run at or before `atMs`, or undefined when there was none. */
  latest(atMs: number): number | undefined {
    return this.cron.previousRuns(1, new Date(atMs + 1))[0]?.getTime()
  }

  /** Every run in (fromMs, toMs], oldest first, at most `limit` (the caller learns there were more from the length). */
  between(fromMs: number, toMs: number, limit: number): number[] {
    const runs: number[] = []
    let at = this.next(fromMs)
    while (at !== undefined && at <= toMs && runs.length < limit) {
      runs.push(at)
      at = this.next(at)
    }
    return runs
  }
}
