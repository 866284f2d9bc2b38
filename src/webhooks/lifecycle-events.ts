/**
 * The ONE mapping from daemon events to the lifecycle events other systems see, on webhooks and on the
 * API's event stream (SSE): `job.created`, `job.started`, `job.progress`, `job.completed`, `job.failed`
 * (`retrying` true or false, `exhausted`), `job.cancelled`, `job.dead`, `job.skipped`, `schedule.fired`,
 * `schedule.missed`. Built from the event's narrow JobInfo/ErrorInfo/ScheduleInfo only (never a row, never
 * a file's content); error messages are already safe (they never quote refused content), names from
 * droppers are escaped and bounded.
 */
import type {DaemonEvent, ErrorInfo, JobInfo, ScheduleInfo} from '../daemon/daemon-events.js'
import {safeName} from '../notify/notice.js'

/** Every event name a lifecycle webhook may subscribe to (the seed's job.* names, plus ours). */
export const LIFECYCLE_EVENTS = ['job.created', 'job.started', 'job.progress', 'job.completed', 'job.failed', 'job.cancelled', 'job.dead', 'job.skipped', 'schedule.missed', 'schedule.fired'] as const
export type LifecycleEventName = (typeof LIFECYCLE_EVENTS)[number]

/**
 * A lifecycle event: its name, `data` — the seed's `data` object (`job_id`, `job_name`, `vm_path`,
 * `status`, `duration_seconds`, … or `schedule_id`, …), what the API's event stream sends as `data:` — and
 * ours beside it: `timestamp`, and `job` (`{id, name, status, origin, schedule_id, attempt, output_path,
 * error, …}`) or `schedule` (`{id, name}`). lifecycleBody() puts them together the seed's way.
 */
export interface LifecycleEvent {
  event: LifecycleEventName
  /** ISO 8601, UTC: when it happened. */
  timestamp: string
  data: Record<string, unknown>
  job?: Record<string, unknown>
  schedule?: Record<string, unknown>
}

/** The JSON body a webhook receives: `{event, timestamp, data, job | schedule}` (the delivery adds `delivery_id`). */
export function lifecycleBody(e: LifecycleEvent): Record<string, unknown> {
  return {data: e.data, event: e.event, timestamp: e.timestamp, ...(e.job ? {job: e.job} : {}), ...(e.schedule ? {schedule: e.schedule} : {})}
}

type JobStatus = 'queued' | 'running' | 'retry_wait' | 'succeeded' | 'failed' | 'cancelled' | 'dead' | 'skipped'

interface JobFacts {
  status: JobStatus
  attempt?: number
  outputPath?: string
  error?: ErrorInfo
}

const seconds = (ms: number): number => Math.round(ms / 10) / 100

const errorOf = (error: ErrorInfo): Record<string, unknown> => ({code: error.code, message: safeName(error.message, 2000), permanent: error.permanent, ...(error.phase ? {phase: error.phase} : {})})

/** Ours: the job as the job service shows it. */
function jobObject(job: JobInfo, facts: JobFacts): Record<string, unknown> {
  return {
    attempt: facts.attempt ?? null,
    error: facts.error ? errorOf(facts.error) : null,
    file: safeName(job.filename, 500),
    file_type: job.fileType,
    id: job.id,
    name: safeName(job.name),
    origin: job.origin,
    output_path: facts.outputPath === undefined ? null : safeName(facts.outputPath, 1000),
    schedule_id: job.scheduleId ?? null,
    size_bytes: job.sizeBytes,
    status: facts.status,
  }
}

function jobEvent(event: LifecycleEventName, at: Date, job: JobInfo, facts: JobFacts, data: Record<string, unknown> = {}): LifecycleEvent {
  return {
    data: {job_id: job.id, job_name: safeName(job.name), status: facts.status, vm_path: safeName(job.filename, 500), ...data},
    event,
    job: jobObject(job, facts),
    timestamp: at.toISOString(),
  }
}

const errorData = (error: ErrorInfo): Record<string, unknown> => ({error: safeName(error.message, 2000), error_code: error.code, permanent: error.permanent})

function scheduleEvent(event: LifecycleEventName, at: Date, schedule: ScheduleInfo, data: Record<string, unknown>): LifecycleEvent {
  const ours = {id: schedule.id, name: safeName(schedule.name)}
  return {data: {schedule_id: ours.id, schedule_name: ours.name, ...data}, event, schedule: ours, timestamp: at.toISOString()}
}

/** The lifecycle event a daemon event is, or undefined (phases, stage timings, duplicates, daemon states are not lifecycle events). */
export function lifecycleEvent(e: DaemonEvent): LifecycleEvent | undefined {
  switch (e.type) {
    case 'job:queued':
      // A retry queues the job again: still job.created (a dashboard sees it queued again), but marked, so
      // a receiver that opens a ticket per job.created can tell it from a new job.
      return jobEvent('job.created', e.at, e.job, {status: 'queued'}, {retried: e.retried === true})
    case 'job:started':
      return jobEvent('job.started', e.at, e.job, {attempt: e.attempt, status: 'running'}, {attempt: e.attempt})
    case 'job:progress':
      return jobEvent('job.progress', e.at, e.job, {status: 'running'}, {phase: e.phase, stage: e.stage})
    case 'job:succeeded':
      return jobEvent('job.completed', e.at, e.job, {attempt: e.attempt, outputPath: e.outputPath, status: 'succeeded'}, {
        attempt: e.attempt,
        duration_seconds: seconds(e.durationMs),
        output_path: safeName(e.outputPath, 1000),
        output_size_bytes: e.outputBytes,
      })
    case 'job:retry':
      return jobEvent('job.failed', e.at, e.job, {attempt: e.attempt, error: e.error, status: 'retry_wait'}, {
        ...errorData(e.error),
        attempt: e.attempt,
        exhausted: false,
        max_retries: e.maxRetries,
        next_retry_at: e.nextRetryAt.toISOString(),
        retrying: true,
      })
    case 'job:failed':
      // job:retry is the retrying failure: a job:failed that says it retries would be told twice.
      if (e.retrying === true) return undefined
      // Out of retries the store has the job dead (the DLQ), and so does the event.
      return jobEvent('job.failed', e.at, e.job, {attempt: e.attempt, error: e.error, status: e.exhausted === true ? 'dead' : 'failed'}, {
        ...errorData(e.error),
        attempt: e.attempt,
        duration_seconds: seconds(e.durationMs),
        // Out of retries (job.dead follows), not a permanent error or retries off: the runner says so (a retry_on code may be permanent in the catalog).
        exhausted: e.exhausted === true,
        max_retries: e.maxRetries,
        retrying: false,
      })
    case 'job:dead':
      return jobEvent('job.dead', e.at, e.job, {attempt: e.attempts, error: e.error, status: 'dead'}, {...errorData(e.error), attempt: e.attempts, exhausted: true})
    case 'job:cancelled':
      return jobEvent('job.cancelled', e.at, e.job, {status: 'cancelled'}, {reason: safeName(e.reason, 500)})
    case 'job:skipped':
      return jobEvent('job.skipped', e.at, e.job, {status: 'skipped'}, {parent_job_id: e.parent, reason: `dependency failed: ${e.parent}`})
    case 'schedule:fired':
      return scheduleEvent('schedule.fired', e.at, e.schedule, {job_ids: [...e.jobIds], manual: e.manual, override_window: e.overrideWindow, scheduled_for: e.scheduledFor.toISOString()})
    case 'schedule:missed':
      return scheduleEvent('schedule.missed', e.at, e.schedule, {reason: safeName(e.reason, 500), scheduled_for: e.scheduledFor.toISOString()})
    default:
      return undefined
  }
}
