import type {CurrentJob} from './daemon-stats.js'
import {storedError} from './error-record.js'
import {definitionOf} from './job-definition.js'
import type {RunningJob} from './job-runner.js'
import type {JobRow} from './store.js'

/**
 * stats' `current_jobs`: the jobs running now and those waiting for their next attempt (the seed lists a
 * retrying job there too, with its count and next try). `waiting` is every unfinished job not running.
 */
export function currentJobs(running: Iterable<RunningJob>, waiting: JobRow[]): CurrentJob[] {
  const active = [...running].map(
    (j): CurrentJob => ({error: null, filename: j.row.source_path, jobId: j.row.id, nextRetryAt: null, phase: j.phase ?? null, retryCount: j.row.attempts - 1, sizeBytes: j.size, startTime: new Date(j.startedAt).toISOString(), status: 'processing'}),
  )
  const retrying = waiting
    .filter((r) => r.status === 'retry_wait')
    .map(
      (r): CurrentJob => ({
        error: r.error ? storedError(r).message : null,
        filename: r.source_path,
        jobId: r.id,
        nextRetryAt: r.next_attempt_at === null ? null : new Date(r.next_attempt_at).toISOString(),
        phase: null,
        retryCount: r.attempts,
        sizeBytes: definitionOf(r).size,
        startTime: r.started_at,
        status: 'retrying',
      }),
    )
  return [...active, ...retrying]
}
