/**
 * A schedule: when (cron + IANA zone), what (a job template), and how runs relate to each other (overlap,
 * catch-up) and to time windows (window, window_end: copied into every job it submits).
 */

export type Overlap = 'skip' | 'queue'
export type CatchUp = 'none' | 'one' | 'all'
export type WindowEnd = 'cancel' | 'finish'
export type ScheduleSource = 'config' | 'api'

/** A time window as job documents write it (src/schedule/time-window.ts parses it). */
export type WindowValue = string | {hours: string; days?: string[]; holidays?: string[]; timezone?: string}

/**
 * What a schedule submits at each run, as written (snake_case keys, absolute paths):
 * - an inline job document (one job, or a `jobs:` batch whose jobs may `depends_on` each other);
 * - `{job_file}`: a job file read at each run;
 * - `{sweep_dir, pattern?}`: every disk file in the directory at run time, one job each;
 * - `{manifest}`: a manifest v1.0 read at each run.
 */
export type JobTemplate = {job_file: string} | {sweep_dir: string; pattern?: string} | {manifest: string} | Record<string, unknown>

export interface ScheduleRetry {
  max?: number
  backoff?: 'exponential' | 'fixed' | 'none'
}

/** What the configuration or an API request defines. */
export interface ScheduleSpec {
  id: string
  name: string
  description?: string
  cron: string
  timezone: string
  enabled: boolean
  template: JobTemplate
  window?: WindowValue
  windowEnd?: WindowEnd
  overlap: Overlap
  catchUp: CatchUp
  retry?: ScheduleRetry
  tags: string[]
  source: ScheduleSource
}

/** A schedule as the store keeps it. */
export interface Schedule extends ScheduleSpec {
  /** Next due time (ms epoch); null while disabled or when the expression never matches again. */
  nextRun: number | null
  lastRun: number | null
  runCount: number
  createdAt: string
  updatedAt: string
}

export type RunOutcome = 'fired' | 'skipped-overlap' | 'missed' | 'queued'

export interface ScheduleRun {
  id: number
  scheduleId: string
  scheduledFor: number
  firedAt: number
  outcome: RunOutcome
  jobIds: string[]
  overrideWindow: boolean
  detail: string | null
}

/** The schedule as the API and `schedule show --json` give it (snake_case, ISO times). */
export function scheduleView(s: Schedule): Record<string, unknown> {
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())
  return {
    catch_up: s.catchUp,
    created_at: s.createdAt,
    cron: s.cron,
    description: s.description ?? null,
    enabled: s.enabled,
    id: s.id,
    job_template: s.template,
    last_run: iso(s.lastRun),
    name: s.name,
    next_run: iso(s.nextRun),
    overlap: s.overlap,
    retry: s.retry ?? null,
    run_count: s.runCount,
    source: s.source,
    tags: s.tags,
    timezone: s.timezone,
    updated_at: s.updatedAt,
    window: s.window ?? null,
    window_end: s.windowEnd ?? null,
  }
}

export function runView(r: ScheduleRun): Record<string, unknown> {
  return {
    detail: r.detail,
    fired_at: new Date(r.firedAt).toISOString(),
    job_ids: r.jobIds,
    outcome: r.outcome,
    override_window: r.overrideWindow,
    scheduled_for: new Date(r.scheduledFor).toISOString(),
  }
}
