import type {H2KError} from '@hyper2kvm/plugin-api'

/** Longest reason recorded (schedule_runs, the log, schedule.missed on SSE and webhooks). */
const REASON_MAX = 2000

/**
 * Why a run failed, for schedule.missed: the error's code and message with every refused value cut out —
 * job-file violations end in `(got "…")`, and a template's file is read by the daemon, not written by
 * whoever watches the events. Key paths and positions stay.
 */
export function missedReason(error: H2KError): string {
  const text = `${error.code}: ${error.message.split('\n').map((line) => line.replace(/\s*\(got .*\)\s*$/, '')).join('\n')}`
  return text.length <= REASON_MAX ? text : `${text.slice(0, REASON_MAX)}…`
}
