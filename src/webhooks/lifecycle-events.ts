import type {DaemonEvent, ErrorInfo, JobInfo} from '../daemon/daemon-events.js'

/** A lifecycle event as it goes on the wire (SSE `event:` + `data:`, webhook payloads): the seed's names. */
export interface LifecycleEvent {
  event: string
  data: Record<string, unknown>
}

/** The job as every event names it: the seed's `job_id`/`job_name` with our fields beside them. */
function jobData(job: JobInfo): Record<string, unknown> {
  return {file_type: job.fileType, job_id: job.id, job_name: job.name, origin: job.origin, size_bytes: job.sizeBytes, source: job.filename, ...(job.scheduleId ? {schedule_id: job.scheduleId} : {})}
}

function errorData(error: ErrorInfo): Record<string, unknown> {
  return {code: error.code, message: error.message, permanent: error.permanent, ...(error.phase ? {phase: error.phase} : {}), ...(error.stage ? {stage: error.stage} : {})}
}

/**
 * The one mapping from daemon events to lifecycle events (`job.created`, `job.started`, `job.progress`,
 * `job.completed`, `job.failed` with `retrying`, …), used by the API's event stream and by webhooks.
 * Events that are not part of the lifecycle (phases, stages, daemon state) map to undefined.
 */
export function lifecycleEvent(e: DaemonEvent): LifecycleEvent | undefined {
  const timestamp = e.at.toISOString()
  switch (e.type) {
    case 'job:queued':
      return {data: {...jobData(e.job), timestamp}, event: 'job.created'}
    case 'job:started':
      return {data: {...jobData(e.job), attempt: e.attempt, timestamp}, event: 'job.started'}
    case 'job:progress':
      return {data: {...jobData(e.job), phase: e.phase, stage: e.stage, timestamp}, event: 'job.progress'}
    case 'job:succeeded':
      return {data: {...jobData(e.job), attempt: e.attempt, duration_seconds: Math.round(e.durationMs) / 1000, output_bytes: e.outputBytes, output_path: e.outputPath, status: 'succeeded', timestamp}, event: 'job.completed'}
    case 'job:retry':
      return {data: {...jobData(e.job), attempt: e.attempt, error: errorData(e.error), max_retries: e.maxRetries, next_retry_at: e.nextRetryAt.toISOString(), retrying: true, timestamp}, event: 'job.failed'}
    case 'job:failed':
      return {data: {...jobData(e.job), attempt: e.attempt, duration_seconds: Math.round(e.durationMs) / 1000, error: errorData(e.error), max_retries: e.maxRetries, retrying: e.retrying, timestamp}, event: 'job.failed'}
    case 'job:cancelled':
      return {data: {...jobData(e.job), reason: e.reason, status: 'cancelled', timestamp}, event: 'job.cancelled'}
    case 'job:dead':
      return {data: {...jobData(e.job), attempts: e.attempts, error: errorData(e.error), status: 'dead', timestamp}, event: 'job.dead'}
    case 'job:skipped':
      return {data: {...jobData(e.job), parent: e.parent, status: 'skipped', timestamp}, event: 'job.skipped'}
    default:
      return undefined
  }
}
