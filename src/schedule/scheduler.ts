import {H2KError} from '@hyper2kvm/plugin-api'
import type {DaemonEvent} from '../daemon/daemon-events.js'
import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import type {Clock, Timer} from './clock.js'
import {CronExpression} from './cron-expression.js'
import {applySchedulePolicy, expandTemplate} from './job-template.js'
import {missedReason} from './missed-reason.js'
import type {RunOutcome, Schedule, ScheduleRun, ScheduleSpec} from './schedule.js'
import type {ScheduleStore} from './schedule-store.js'
import {checkScheduleCount} from './schedule-limits.js'

/** How long the scheduler waits before it reads its schedules again after the store failed to answer. */
const ARM_RETRY_MS = 5000

/** What a schedule submits through (the daemon's JobService.submit, origin 'schedule'). */
export type SubmitJobs = (document: Record<string, unknown>, options: {origin: 'schedule'; scheduleId: string}) => Promise<Array<{id: string}>>

export interface SchedulerDeps {
  store: ScheduleStore
  clock: Clock
  submit: SubmitJobs
  emit: (event: DaemonEvent) => void
  log: DaemonLogFn
  /** allowed_input_dirs as configured now (a SIGHUP may change them). */
  allowedInputDirs: () => readonly string[]
}

/** A due time this late (the daemon was down, the host suspended) is a missed run, handled by catch_up. */
export const LATE_AFTER_MS = 60_000
/** Catch-up looks at most this many missed due times per schedule; older ones are counted as one missed event. */
export const MAX_CATCH_UP = 100

/**
 * Runs schedules: one timer for the earliest next_run of the enabled ones; at each due time the template
 * is expanded and submitted through the job service (origin 'schedule', the schedule's window copied into
 * every job), unless the previous run's jobs are still going and overlap is `skip`. Due times missed
 * while the daemon was down are handled by catch_up: `none` skips them, `one` runs the latest, `all` runs
 * each (at most MAX_CATCH_UP); every skipped one is a `schedule:missed` event and a schedule_runs row.
 * next_run / last_run / run_count live in the store, so a restart continues where it stopped.
 */
export class Scheduler {
  private timer?: Timer
  private running: Promise<void> = Promise.resolve()
  private stopped = false

  constructor(private readonly deps: SchedulerDeps) {}

  /** Catch up on what was missed while stopped, then wait for the next due time. */
  async start(): Promise<void> {
    this.stopped = false
    await this.tick()
  }

  /** No more runs; waits for a run in progress (its jobs are recorded or not, never half). */
  async stop(): Promise<void> {
    this.stopped = true
    this.timer?.cancel()
    this.timer = undefined
    await this.running
  }

  /** Resolves once no run is in progress (tests driving a fake clock). */
  idle(): Promise<void> {
    return this.running
  }

  list(): Schedule[] {
    return this.deps.store.all()
  }

  get(id: string): Schedule | undefined {
    return this.deps.store.get(id)
  }

  runs(id: string, limit?: number): ScheduleRun[] {
    return this.deps.store.runs(id, limit)
  }

  /**
   * The configuration's `schedules:` (at start and on SIGHUP): the file owns its schedules — new ones are
   * added, changed ones updated (next_run recomputed when the timing changed), removed ones deleted; those
   * created over the API are left alone unless the file now defines the same id.
   */
  sync(specs: readonly ScheduleSpec[]): {added: string[]; updated: string[]; removed: string[]} {
    const {store} = this.deps
    const result = {added: [] as string[], removed: [] as string[], updated: [] as string[]}
    const wanted = new Set(specs.map((s) => s.id))
    for (const current of store.all()) {
      if (current.source === 'config' && !wanted.has(current.id)) {
        store.delete(current.id)
        result.removed.push(current.id)
      }
    }
    for (const spec of specs) {
      const current = store.get(spec.id)
      if (current && sameDefinition(current, spec)) continue
      if (current?.source === 'api') this.deps.log('warn', 'schedule:replaced', {schedule: spec.id}, 'a schedule of the configuration file has the id of one created over the API: the file\'s replaces it')
      this.save(spec, current)
      ;(current ? result.updated : result.added).push(spec.id)
    }
    if (result.added.length + result.updated.length + result.removed.length > 0) {
      this.deps.log('info', 'schedules:synced', {added: list(result.added), removed: list(result.removed), updated: list(result.updated)})
    }
    this.arm()
    return result
  }

  /** A schedule created over the API (its id must be new). */
  create(spec: ScheduleSpec): Schedule {
    if (this.deps.store.get(spec.id)) throw conflict(`A schedule ${spec.id} exists already.`, 'Choose another id, or change it with PATCH /api/v1/schedules/{id}.')
    checkScheduleCount(this.deps.store.all().length)
    const saved = this.save(spec, undefined)
    this.deps.log('info', 'schedule:created', {next_run: iso(saved.nextRun), schedule: spec.id, source: spec.source})
    this.arm()
    return saved
  }

  /** Replace an API schedule's definition (the route merged the patch into its keys). */
  update(spec: ScheduleSpec): Schedule {
    const current = this.owned(spec.id)
    const saved = this.save(spec, current)
    this.deps.log('info', 'schedule:updated', {enabled: saved.enabled, next_run: iso(saved.nextRun), schedule: spec.id})
    this.arm()
    return saved
  }

  setEnabled(id: string, enabled: boolean): Schedule {
    const current = this.owned(id)
    return this.update({...current, enabled})
  }

  remove(id: string): void {
    this.owned(id)
    this.deps.store.delete(id)
    this.deps.log('info', 'schedule:deleted', {schedule: id})
    this.arm()
  }

  /** Run a schedule now (`schedule trigger --now`), whatever its timing, enabled or not; `overrideWindow` lets its jobs run outside their window. */
  async trigger(id: string, options: {overrideWindow?: boolean} = {}): Promise<ScheduleRun> {
    const schedule = this.deps.store.get(id)
    if (!schedule) throw notFound(id)
    let run: ScheduleRun | undefined
    await this.serialize(async () => {
      run = await this.fire(schedule, this.deps.clock.now(), {manual: true, overrideWindow: options.overrideWindow === true})
    })
    return run!
  }

  /** The schedule, when it exists and belongs to the API (the configuration file's are changed in the file). */
  private owned(id: string): Schedule {
    const current = this.deps.store.get(id)
    if (!current) throw notFound(id)
    if (current.source === 'config') throw conflict(`Schedule ${id} comes from the daemon configuration file; change it there (and send SIGHUP).`, 'Edit schedules: in the configuration and reload the daemon (systemctl reload, or kill -HUP).')
    return current
  }

  private save(spec: ScheduleSpec, current: Schedule | undefined): Schedule {
    const now = this.deps.clock.now()
    // Timing unchanged and still enabled: keep the due time (a reload must not skip or repeat a run).
    const keep = current !== undefined && current.enabled && spec.enabled && current.cron === spec.cron && current.timezone === spec.timezone && current.nextRun !== null
    const nextRun = !spec.enabled ? null : keep ? current.nextRun : nextAfter(spec, now)
    return this.deps.store.put(spec, nextRun, now)
  }

  // ---- time ---------------------------------------------------------------------------------------------

  /** One run at a time (a tick, a trigger): runs never interleave their store updates. */
  private serialize(fn: () => Promise<void>): Promise<void> {
    const next = this.running.then(fn, fn)
    this.running = next.catch((error: unknown) => this.deps.log('error', 'schedule:error', {}, mapForeignError(error).message))
    return next
  }

  private tick(): Promise<void> {
    return this.serialize(async () => {
      try {
        const now = this.deps.clock.now()
        for (const schedule of this.deps.store.all()) {
          if (this.stopped) return
          if (schedule.enabled && schedule.nextRun !== null && schedule.nextRun <= now) await this.due(schedule, now)
        }
      } finally {
        this.arm()
      }
    })
  }

  /**
   * Wake at the earliest next_run (re-armed after every change and tick). A store that does not answer
   * (an outage) is asked again ARM_RETRY_MS later: the schedules never stop, the daemon never crashes.
   */
  private arm(): void {
    this.timer?.cancel()
    this.timer = undefined
    if (this.stopped) return
    let next: number
    try {
      next = Math.min(...this.deps.store.all().filter((s) => s.enabled && s.nextRun !== null).map((s) => s.nextRun!))
    } catch (error) {
      this.deps.log('warn', 'schedule:error', {}, `${mapForeignError(error).message} (asked again in ${ARM_RETRY_MS / 1000} s)`)
      next = this.deps.clock.now() + ARM_RETRY_MS
    }
    if (!Number.isFinite(next)) return
    // tick() logs its own failures (serialize); the promise is never left to reject unhandled.
    this.timer = this.deps.clock.setTimer(() => void this.tick().catch(() => undefined), Math.max(0, next - this.deps.clock.now()))
  }

  /** Every due time of one schedule up to now: on-time ones fire; late ones follow catch_up. */
  private async due(schedule: Schedule, now: number): Promise<void> {
    const cron = new CronExpression(schedule.cron, schedule.timezone)
    const times = [schedule.nextRun!, ...cron.between(schedule.nextRun!, now, MAX_CATCH_UP - 1)]
    // More than MAX_CATCH_UP due times: those after the listed ones count as one missed event, except the latest.
    const beyond = times.length === MAX_CATCH_UP ? cron.next(times.at(-1)!) : undefined
    const latest = beyond !== undefined && beyond <= now ? cron.latest(now) : undefined
    if (latest !== undefined && latest > times.at(-1)!) times.push(latest)
    const onTime = times.filter((t) => now - t <= LATE_AFTER_MS)
    const late = times.filter((t) => now - t > LATE_AFTER_MS)
    let toFire: number[]
    if (schedule.catchUp === 'all') toFire = late.slice(0, MAX_CATCH_UP)
    else if (schedule.catchUp === 'one' && onTime.length === 0 && late.length > 0) toFire = [late.at(-1)!]
    else toFire = []
    for (const t of late.filter((t) => !toFire.includes(t))) {
      this.missed(schedule, t, `the daemon was not running at ${new Date(t).toISOString()} (catch_up: ${schedule.catchUp})`)
    }
    if (beyond !== undefined && beyond <= now && beyond !== latest) {
      this.missed(schedule, beyond, `more than ${MAX_CATCH_UP} due times were missed; those from this one on are not listed one by one`)
    }
    for (const t of [...toFire, ...onTime]) await this.fire(schedule, t, {late: now - t > LATE_AFTER_MS, manual: false, overrideWindow: false})
    // The next due time after now, persisted before anything else can happen.
    this.deps.store.setNextRun(schedule.id, cron.next(now) ?? null)
  }

  private missed(schedule: Schedule, scheduledFor: number, reason: string, outcome: RunOutcome = 'missed'): ScheduleRun {
    const run = this.deps.store.recordRun({detail: reason, firedAt: this.deps.clock.now(), outcome, scheduleId: schedule.id, scheduledFor})
    this.deps.log('warn', 'schedule:missed', {outcome, schedule: schedule.id, scheduled_for: iso(scheduledFor)}, reason)
    this.deps.emit({at: new Date(this.deps.clock.now()), reason, schedule: info(schedule), scheduledFor: new Date(scheduledFor), type: 'schedule:missed'})
    return run
  }

  /** Submit one run's jobs (or record why not). */
  private async fire(schedule: Schedule, scheduledFor: number, how: {manual: boolean; overrideWindow: boolean; late?: boolean}): Promise<ScheduleRun> {
    const {store} = this.deps
    const busy = store.unfinishedJobs(schedule.id)
    if (busy.length > 0 && schedule.overlap === 'skip' && !how.manual) {
      return this.missed(schedule, scheduledFor, `the previous run is still going (${busy.length} job${busy.length === 1 ? '' : 's'} unfinished: ${busy.slice(0, 5).join(', ')}); overlap: skip`, 'skipped-overlap')
    }
    let jobIds: string[]
    try {
      const {document, notes} = await expandTemplate(schedule.template, {allowedInputDirs: this.deps.allowedInputDirs(), source: schedule.source})
      for (const note of notes) this.deps.log('warn', 'schedule:template', {schedule: schedule.id}, note)
      const jobs = await this.deps.submit(applySchedulePolicy(document, schedule, {overrideWindow: how.overrideWindow}), {origin: 'schedule', scheduleId: schedule.id})
      jobIds = jobs.map((j) => j.id)
    } catch (error) {
      const mapped = mapForeignError(error)
      if (how.manual) throw mapped
      return this.missed(schedule, scheduledFor, missedReason(mapped))
    }
    const outcome: RunOutcome = busy.length > 0 ? 'queued' : 'fired'
    const run = store.recordRun({firedAt: this.deps.clock.now(), jobIds, outcome, overrideWindow: how.overrideWindow, scheduleId: schedule.id, scheduledFor})
    this.deps.log('info', 'schedule:fired', {catch_up: how.late ? true : undefined, jobs: jobIds.join(','), manual: how.manual || undefined, outcome, override_window: how.overrideWindow || undefined, schedule: schedule.id, scheduled_for: iso(scheduledFor)})
    this.deps.emit({at: new Date(this.deps.clock.now()), jobIds, manual: how.manual, overrideWindow: how.overrideWindow, schedule: info(schedule), scheduledFor: new Date(scheduledFor), type: 'schedule:fired'})
    return run
  }
}

const info = (s: Schedule): {id: string; name: string} => ({id: s.id, name: s.name})
const iso = (ms: number | null | undefined): string | undefined => (ms === null || ms === undefined ? undefined : new Date(ms).toISOString())
const list = (ids: string[]): string | undefined => (ids.length > 0 ? ids.join(',') : undefined)

function nextAfter(spec: ScheduleSpec, now: number): number | null {
  return new CronExpression(spec.cron, spec.timezone).next(now) ?? null
}

/** The parts of a definition the configuration owns (counters and times are the store's). */
function sameDefinition(current: Schedule, spec: ScheduleSpec): boolean {
  const pick = (s: ScheduleSpec) => JSON.stringify([s.name, s.description, s.cron, s.timezone, s.enabled, s.template, s.window, s.windowEnd, s.overlap, s.catchUp, s.retry, s.tags, s.source])
  return pick(current) === pick(spec)
}

/** No such schedule (the API answers 404). */
export function notFound(id: string): H2KError {
  return new H2KError('H2K_NOT_FOUND', `No schedule ${id}.`, {details: {schedule: id}, suggestions: ['`hyper2kvm schedule list` shows the schedules.']})
}

/** The schedule cannot be changed so: owned by the configuration file, or its id taken (the API answers 409). */
function conflict(message: string, suggestion: string): H2KError {
  return new H2KError('H2K_JOB_STATE', message, {suggestions: [suggestion]})
}
