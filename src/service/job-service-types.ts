import type {AttemptRow, HistoryRow, JobRow, JobStatus} from '../daemon/store.js'

/** How a document came to the service. */
export interface SubmitOptions {
  origin: 'api' | 'schedule'
  scheduleId?: string
  requestId?: string
  /** Not started before this instant (ms epoch), with `waitReason` shown meanwhile. */
  notBefore?: number
  waitReason?: string
}

/** One job with everything known about it (`show`). */
export interface JobDetail {
  job: JobRow
  history: HistoryRow[]
  attempts: AttemptRow[]
  /** Ids of the jobs it waits for. */
  dependsOn: string[]
  /** Ids of the jobs waiting for it. */
  dependents: string[]
  /** The job result (outputs, report), parsed; null until it succeeded. */
  result: unknown
  /** The last error, parsed; null when there is none. */
  error: unknown
}

export interface JobListFilter {
  status?: JobStatus
  /** 1..500, default 50. */
  limit?: number
  cursor?: string
}

export interface JobList {
  jobs: JobRow[]
  nextCursor: string | null
}

/**
 * The daemon's jobs as other parts (the REST API, schedules, the CLI) act on them: submit documents, list
 * and show jobs, cancel, retry, the dead-letter queue. Errors are H2KErrors with catalog codes.
 */
export interface JobService {
  /**
   * A parsed job document (one job or a `jobs:` batch): validated with the job-file schema (H2K_JOB_INVALID
   * with paths), every input resolved (realpath) and required under allowed_input_dirs (H2K_UNSAFE_PATH),
   * `depends_on` resolved (batch names first, then job ids; unknown ones and cycles refused with
   * H2K_JOB_INVALID naming them); all jobs inserted in one transaction, queued; job:queued per job; the pool woken.
   */
  submit(document: unknown, options: SubmitOptions): Promise<JobRow[]>
  list(filter: JobListFilter): JobList
  show(idOrPrefix: string): JobDetail | undefined
  /** queued/retry_wait → cancelled now; running → aborted, then cancelled; a finished job → H2K_JOB_STATE. */
  cancel(id: string, reason: string): JobRow
  /** failed|dead|cancelled|skipped → queued (attempts restart; history says 'retried'), with its skipped dependents, transitively. */
  retry(id: string): JobRow[]
  /** The dead-letter queue: jobs whose retries were exhausted. */
  dead(filter: Omit<JobListFilter, 'status'>): JobList
  /**
   * Delete dead jobs: one (by id) or all; returns how many rows went. A job that is not dead → H2K_JOB_STATE;
   * one whose dependents have not succeeded → H2K_JOB_STATE naming them; all: each dead job goes with its
   * unsucceeded (skipped, cancelled …) dependents, transitively, so no dependent is left without its parent.
   */
  purge(id?: string): number
}
