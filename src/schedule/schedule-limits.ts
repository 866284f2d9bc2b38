import {H2KError} from '@hyper2kvm/plugin-api'

/** Schedules one daemon holds at most (README, "Job service API": the job service's caps). */
export const MAX_SCHEDULES = 1000

/** One schedule more than MAX_SCHEDULES: refused as a conflict with the daemon's state (409). */
export function checkScheduleCount(existing: number): void {
  if (existing >= MAX_SCHEDULES) {
    throw new H2KError('H2K_JOB_STATE', `The daemon holds ${existing} schedules already; at most ${MAX_SCHEDULES} are allowed.`, {
      suggestions: ['Delete schedules that are no longer needed, or sweep one directory instead of one schedule per VM.'],
    })
  }
}
