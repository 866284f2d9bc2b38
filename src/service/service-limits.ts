import {H2KError} from '@hyper2kvm/plugin-api'

/**
 * The job service's caps on submissions (README, "Job service API"): what one API caller can make the daemon
 * store and run. Schedules: at most 1000 (schedule/schedule-limits.ts). Runs of a schedule: the newest 500 are kept (schedule-store.ts); a sweep takes at most
 * 500 files per run (job-template.ts); cron may fire every minute (no minimum interval).
 */
export const MAX_JOBS_PER_SUBMISSION = 1000

/** A submitted document (or a schedule's run) of more than MAX_JOBS_PER_SUBMISSION jobs: H2K_JOB_INVALID before anything is planned. */
export function checkSubmissionSize(document: object, label: string): void {
  const jobs = (document as {jobs?: unknown}).jobs
  const count = Array.isArray(jobs) ? jobs.length : 1
  if (count > MAX_JOBS_PER_SUBMISSION) {
    throw new H2KError('H2K_JOB_INVALID', `${label} holds ${count} jobs; one submission may hold at most ${MAX_JOBS_PER_SUBMISSION}.`, {suggestions: ['Submit the wave in several batches (depends_on may name job ids of earlier batches).']})
  }
}
