/** A timer set through a Clock. */
export interface Timer {
  cancel(): void
}

/**
 * Time as the daemon sees it (the pump and its gates, retry timers, time windows, the scheduler): one
 * injected clock, so a test drives a whole daemon with a fake one (a window opening, a DST change, a week of
 * downtime) without waiting for wall time.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Call `fn` once after `ms` milliseconds (never before). */
  setTimer(fn: () => void, ms: number): Timer
}

/** setTimeout fires at once beyond 2^31-1 ms (~24.8 days): longer waits are chained. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** The real clock: Date.now() and setTimeout (unref'd: a pending schedule never keeps a process alive on its own). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const due = Date.now() + Math.max(0, ms)
    let handle: NodeJS.Timeout | undefined
    const arm = (): void => {
      const left = due - Date.now()
      handle = setTimeout(left > MAX_TIMEOUT_MS ? arm : fn, Math.min(Math.max(0, left), MAX_TIMEOUT_MS))
      handle.unref()
    }
    arm()
    return {cancel: () => clearTimeout(handle)}
  },
}
