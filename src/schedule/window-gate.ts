import {isH2KError} from '@hyper2kvm/plugin-api'

import type {DispatchGate} from '../daemon/dispatch-gate.js'
import type {JobPolicy} from '../daemon/job-policy.js'
import {parseWindow, type TimeWindow} from './time-window.js'

/** Parsed windows by spec + default zone: the pump asks about every queued job, often; a spec is parsed once. */
const parsed = new Map<string, TimeWindow>()
const MAX_CACHED = 256

/**
 * The window of a job's policy, parsed (a window without `timezone` is in `defaultZone`, else the host's).
 * Undefined when the job has none. Throws H2K_JOB_INVALID for a spec that no longer parses (the time zone
 * database of this host lacks its zone).
 */
export function policyWindow(policy: JobPolicy | undefined, defaultZone?: string): TimeWindow | undefined {
  if (policy?.window === undefined) return undefined
  const key = JSON.stringify([policy.window, defaultZone ?? null])
  let window = parsed.get(key)
  if (!window) {
    window = parseWindow(policy.window, defaultZone)
    if (parsed.size >= MAX_CACHED) parsed.clear()
    parsed.set(key, window)
  }
  return window
}

const REASON_PREFIX = 'outside window '

/** The reason a job waits for its window, as `ctl jobs` and the API show it. */
export function outsideWindowReason(window: TimeWindow, opens: number): string {
  return `${REASON_PREFIX}${window.describe()}, opens ${new Date(opens).toISOString()}`
}

/**
 * The dispatch gate of time windows: a job with a `window` that is closed now (and no `override_window`)
 * stays queued with not_before = the window's next opening and a wait reason saying so. A window that no
 * longer parses holds its job (never runs it outside a window it cannot judge) and says why.
 */
export function windowGate(options: {defaultZone?: string} = {}): DispatchGate {
  return (row, def, now) => {
    const policy = def.policy
    if (policy?.window === undefined || policy.overrideWindow === true) return {due: true}
    // The answer this gate stored last time holds until its not_before: the window is closed until its
    // next opening by definition. A wave of waiting jobs costs no time-zone arithmetic per pump.
    if (row.not_before !== null && now < row.not_before && row.wait_reason?.startsWith(REASON_PREFIX)) {
      return {due: false, notBefore: row.not_before, reason: row.wait_reason}
    }
    let window: TimeWindow | undefined
    try {
      window = policyWindow(policy, options.defaultZone)
    } catch (error) {
      if (!isH2KError(error)) throw error
      return {due: false, notBefore: null, reason: `window cannot be judged: ${error.message}`}
    }
    if (!window || window.contains(now)) return {due: true}
    const opens = window.nextOpen(now)
    return {due: false, notBefore: opens, reason: outsideWindowReason(window, opens)}
  }
}
