import {JOB_STATUSES_V2} from './migrations/002-job-service.js'

/** The rows of the job store (store.ts) as its readers see them. */

export type JobStatus = 'queued' | 'running' | 'retry_wait' | 'succeeded' | 'failed' | 'duplicate' | 'cancelled' | 'dead' | 'skipped'
export const JOB_STATUSES: readonly JobStatus[] = JOB_STATUSES_V2
/** Statuses a job never leaves by itself (retry moves failed, dead, cancelled and skipped back to queued). */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'duplicate', 'cancelled', 'dead', 'skipped']
export const isTerminal = (status: JobStatus): boolean => TERMINAL_STATUSES.includes(status)

/** Where a job came from: a dropped item (a claim), the API, or a schedule. */
export type JobOrigin = 'drop' | 'api' | 'schedule'

export interface JobRow {
  id: string
  name: string
  vm_path: string
  /** The file as it arrived (the name the error file and dedup use). */
  source_path: string
  output_path: string
  status: JobStatus
  created_at: string
  started_at: string | null
  completed_at: string | null
  progress_json: string | null
  result_json: string | null
  error: string | null
  definition_json: string
  attempts: number
  next_attempt_at: number | null
  /** The claim this job came from (`<processing>/<intake_id>/`): a batch job config claims once for many jobs. Null for API and schedule jobs (no claim). */
  intake_id: string | null
  /** A queued job that is not due yet: when it may be (ms epoch; null when it waits for something else, e.g. a dependency). */
  not_before: number | null
  /** Why a queued job is not started yet (a dependency, a time window …); null once it is due. */
  wait_reason: string | null
  origin: JobOrigin
  schedule_id: string | null
  request_id: string | null
  /** The node whose lease lets it run this job (running only; migration 5). */
  leased_by?: string | null
  /** Until when that lease holds (ms epoch of the store's clock). */
  lease_until?: number | null
}

/** One run of a job (`job_attempts`). */
export interface AttemptRow {
  job_id: string
  attempt: number
  started_at: string
  ended_at: string | null
  /** succeeded, retry (failed, will run again), failed, dead, cancelled, requeued (daemon stopped); null while running. */
  outcome: string | null
  error_json: string | null
}

/** A page of jobs (`jobsPage`): `nextCursor` is null on the last page. */
export interface JobPage {
  jobs: JobRow[]
  nextCursor: string | null
}

export interface HistoryRow {
  id: number
  job_id: string
  at: string
  from_status: string | null
  to_status: string
  detail: string | null
}

export interface ProcessedFileRow {
  id: number
  filename: string
  file_size: number
  file_hash: string | null
  processed_at: string
  job_id: string | null
  output_path: string | null
}

/** What `dedup stats` reports about processed_files. */
export interface ProcessedStats {
  rows: number
  /** Distinct file names. */
  files: number
  /** Sum of the recorded file sizes. */
  bytes: number
  oldest: string | null
  newest: string | null
  /** Rows per key type: md5, sha256, name-size (no hash). */
  byKey: Record<string, number>
}

/** A job to insert; `intake_id` null for a job without a claim (API, schedules), absent for a claim of its own (the id). */
export type NewJobRow = Pick<JobRow, 'id' | 'name' | 'vm_path' | 'source_path' | 'output_path' | 'definition_json'> & {
  intake_id?: string | null
  status?: JobStatus
  detail?: string
  origin?: JobOrigin
  schedule_id?: string
  request_id?: string
  not_before?: number
  wait_reason?: string
  /** Ids of jobs (already in the store, or inserted earlier in the same transaction) this one waits for. */
  depends_on?: readonly string[]
}

