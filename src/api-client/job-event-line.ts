import type {ApiJobDetail} from './job-detail.js'

/** A lifecycle event as `jobs watch` reads it: its name and `data` (openapi.yaml `LifecycleEventData`). */
export interface WatchedEvent {
  event: string
  data: Record<string, unknown>
}

/** The events after which a job does nothing more (job.failed only when it is not retried). */
export function isFinal(e: WatchedEvent): boolean {
  return ['job.completed', 'job.cancelled', 'job.dead', 'job.skipped'].includes(e.event) || (e.event === 'job.failed' && e.data.retrying === false)
}

const text = (value: unknown): string => (value === undefined || value === null ? '' : String(value))

/** What the event says beyond its job: the stage, the error code, the output, the parent that failed. */
function detailOf({data, event}: WatchedEvent): string {
  switch (event) {
    case 'job.progress':
      return `${text(data.phase)} ${text(data.stage)}`
    case 'job.failed':
      return `${text(data.error_code)} ${data.retrying === true ? `retrying (attempt ${text(data.attempt)})` : 'no more retries'}`
    case 'job.dead':
      return `${text(data.error_code)} retries exhausted`
    case 'job.completed':
      return data.status === 'duplicate' ? 'duplicate of an earlier conversion' : `${text(data.duration_seconds)} s → ${text(data.output_path)}`
    case 'job.skipped':
      return `parent ${text(data.parent_job_id)} did not succeed`
    case 'job.cancelled':
      return text(data.reason)
    default:
      return ''
  }
}

/** `<time>  <event>  <job id>  <name>  <detail>`: one line a person follows (the caller escapes it). */
export function eventLine(e: WatchedEvent): string {
  return [text(e.data.timestamp), e.event.padEnd(13), text(e.data.job_id ?? e.data.schedule_id), text(e.data.job_name ?? e.data.schedule_name), detailOf(e)].filter((p) => p.trim() !== '').join('  ')
}

const FINAL_EVENT: Record<string, string> = {cancelled: 'job.cancelled', dead: 'job.dead', duplicate: 'job.completed', failed: 'job.failed', skipped: 'job.skipped', succeeded: 'job.completed'}

/**
 * The last event of a job that had already finished when the stream opened, told from its detail (the
 * stream cannot replay it): undefined while the job is not finished.
 */
export function finalEventOf(detail: ApiJobDetail): WatchedEvent | undefined {
  const {job} = detail
  const event = FINAL_EVENT[job.status]
  if (event === undefined) return undefined
  const last = detail.history.at(-1)
  const data: Record<string, unknown> = {job_id: job.id, job_name: job.name, status: job.status, timestamp: job.completed_at ?? last?.at ?? new Date().toISOString()}
  if (event === 'job.completed' && job.started_at && job.completed_at) data.duration_seconds = Math.round((Date.parse(job.completed_at) - Date.parse(job.started_at)) / 10) / 100
  if (event === 'job.completed') data.output_path = job.output_path
  if (event === 'job.failed' || event === 'job.dead') Object.assign(data, {attempt: job.attempts, error_code: job.error?.code, retrying: false})
  // The history says why: `dependency failed: <parent id>`, `cancelled: <reason>`.
  if (event === 'job.skipped') data.parent_job_id = /^dependency failed: (\S+)/.exec(last?.detail ?? '')?.[1]
  if (event === 'job.cancelled') data.reason = last?.detail?.replace(/^cancelled: /, '')
  return {data, event}
}
