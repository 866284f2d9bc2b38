/**
 * What the daemon tells the pieces around it (notifications, metrics, the HTTP listener, stats): one event
 * per job transition and daemon state change. Listeners receive narrow, plain data — never the daemon, the
 * store or a job row — and must not throw or block (delivery that takes time is queued by the listener).
 */

/** A job as listeners see it. */
export interface JobInfo {
  /** The store's job id. */
  id: string
  /** The claim the job came from (a batch job file claims once for several jobs). */
  intakeId: string
  /** The VM name (output directory name). */
  name: string
  /** The dropped file as it arrived (its name, relative to the inbox). */
  filename: string
  /** Lower-case extension of `filename` without the dot (`vmdk`, `ova` …), `none` when it has none. */
  fileType: string
  /** Size of the dropped file in bytes (0 when unknown). */
  sizeBytes: number
  /** Where the job came from: a dropped item, the API, a schedule. */
  origin: 'drop' | 'api' | 'schedule'
  /** The schedule that submitted it (origin schedule). */
  scheduleId?: string
}

/** A failure as listeners see it: the H2KError's stable parts (messages never quote refused content). */
export interface ErrorInfo {
  code: string
  message: string
  phase?: string
  stage?: string
  suggestion?: string
  permanent: boolean
}

/** A schedule as listeners see it (src/schedule/). */
export interface ScheduleInfo {
  id: string
  name: string
}

export type DaemonState = 'RUNNING' | 'PAUSED' | 'DRAINING' | 'STOPPING'

export type DaemonEvent =
  /** A job was queued: submitted or claimed (a new job), or `retried` (JobService.retry: a job queued before, again). */
  | {type: 'job:queued'; at: Date; job: JobInfo; retried?: true}
  | {type: 'job:started'; at: Date; job: JobInfo; attempt: number}
  | {type: 'job:phase'; at: Date; job: JobInfo; phase: string}
  /** A running job reported progress (a copy advanced, a stage moved on): what stall detection watches. */
  | {type: 'job:progress'; at: Date; job: JobInfo; phase: string; stage: string}
  /** A stage of the pipeline finished (per-stage durations for metrics). */
  | {type: 'job:stage'; at: Date; job: JobInfo; stage: string; kind: string; durationMs: number; status: 'ok' | 'skipped' | 'failed'}
  | {type: 'job:succeeded'; at: Date; job: JobInfo; attempt: number; maxRetries: number; durationMs: number; outputPath: string; outputBytes: number; previousError?: ErrorInfo}
  | {type: 'job:retry'; at: Date; job: JobInfo; attempt: number; maxRetries: number; error: ErrorInfo; delayMs: number; nextRetryAt: Date}
  /**
   * A job ended failed (a permanent error, retries disabled) or dead (retries exhausted; job:dead follows).
   * `retrying` is false here: a failure that will be retried is job:retry.
   */
  | {type: 'job:failed'; at: Date; job: JobInfo; attempt: number; maxRetries: number; error: ErrorInfo; durationMs: number; retrying: boolean; /** Retries ran out (a job:dead follows): not a permanent error or retries off. */ exhausted?: boolean}
  /** Cancelled through the API/CLI (or window_end: cancel): queued ones at once, running ones once aborted. */
  | {type: 'job:cancelled'; at: Date; job: JobInfo; reason: string}
  /** Retries exhausted: the job is in the dead-letter queue, with its last error and every attempt. */
  | {type: 'job:dead'; at: Date; job: JobInfo; attempts: number; error: ErrorInfo}
  /** A job was skipped because a job it depends on (`parent`, an id) did not succeed. */
  | {type: 'job:skipped'; at: Date; job: JobInfo; parent: string}
  | {type: 'job:duplicate'; at: Date; job: JobInfo; ofJob?: string}
  /** Jobs are queued or running but nothing progressed for `idleSeconds` (stall_check_interval). */
  | {type: 'daemon:stalled'; at: Date; idleSeconds: number; queued: number; running: number}
  | {type: 'daemon:state'; at: Date; state: DaemonState}
  /** A schedule submitted its jobs: at its due time (`scheduledFor`), on a catch-up after downtime, or triggered (`manual`). */
  | {type: 'schedule:fired'; at: Date; schedule: ScheduleInfo; jobIds: string[]; scheduledFor: Date; manual: boolean; overrideWindow: boolean}
  /** A due time passed without jobs: the previous run still going (overlap: skip), the daemon down (catch_up), or the template failed. */
  | {type: 'schedule:missed'; at: Date; schedule: ScheduleInfo; scheduledFor: Date; reason: string}

/** A piece that listens to the daemon. */
export interface DaemonListener {
  onDaemonEvent(event: DaemonEvent): void
}

/** What gauges read at scrape time (queue depth, active jobs …). */
export interface DaemonSnapshot {
  state: DaemonState
  /** Jobs queued (including those waiting for a retry). */
  queued: number
  /** Jobs waiting for a retry (a subset of `queued`). */
  retryWaiting: number
  /** Queued jobs a dispatch gate holds back (a dependency, a time window: they have a wait_reason; a subset of `queued`). */
  held?: number
  running: number
  /** Files seen in the inbox, not claimed yet (waiting to be stable / complete). */
  pendingFiles: number
  maxConcurrentJobs: number
  startedAt: Date
  /** When the intake loop last finished a scan of the inbox (the sd_notify watchdog pings only while it does); undefined before the first. */
  intakeTickAt?: Date
  /** Milliseconds between two intake scans (stability interval): how old `intakeTickAt` may normally get. */
  intakeIntervalMs?: number
}
