import {H2KError} from '@hyper2kvm/plugin-api'

/**
 * The job service's caps, in one place (README, "job service"): what one API caller can make the daemon
 * store and run. Runs of a schedule: the newest 500 are kept (schedule-store.ts); a sweep takes at most
 * 500 files per run (job-template.ts); cron may fire every minute (no minimum interval).
 */
export const MAX_JOBS_PER_SUBMISSION = 1000
export const MAX_SCHEDULES = 1000

/** A submitted document (or a schedule's run) of more than MAX_JOBS_PER_SUBMISSION jobs: H2K_JOB_INVALID before anything is planned. */
export function checkSubmissionSize(document: object, label: string): void {
  const jobs = (document as {jobs?: unknown}).jobs
  const count = Array.isArray(jobs) ? jobs.length : 1
  if (count > MAX_JOBS_PER_SUBMISSION) {
    throw new H2KError('H2K_JOB_INVALID', `${label} holds ${count} jobs; one submission may hold at most ${MAX_JOBS_PER_SUBMISSION}.`, {suggestions: ['Submit the wave in several batches (depends_on may name job ids of earlier batches).']})
  }
}

/** One schedule more than MAX_SCHEDULES: refused (409). */
export function checkScheduleCount(existing: number): void {
  if (existing >= MAX_SCHEDULES) {
    throw new H2KError('H2K_USAGE', `The daemon holds ${existing} schedules already; at most ${MAX_SCHEDULES} are allowed.`, {details: {status: 409}, suggestions: ['Delete schedules that are no longer needed, or sweep one directory instead of one schedule per VM.']})
  }
}
