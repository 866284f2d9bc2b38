import type {Clock, Timer} from '../../src/time/clock.js'

/**
 * A clock the test moves: `advanceTo` fires the timers due on the way, in order, the clock reading each
 * timer's due time while it runs, and waits for what the timer started (`settle`) before the next.
 */
export class FakeClock implements Clock {
  private timers: Array<{at: number; fn: () => void; cancelled: boolean}> = []

  constructor(private ms: number) {}

  now(): number {
    return this.ms
  }

  setTimer(fn: () => void, ms: number): Timer {
    const timer = {at: this.ms + Math.max(0, ms), cancelled: false, fn}
    this.timers.push(timer)
    return {cancel: () => (timer.cancelled = true)}
  }

  /** Jump without firing anything (the daemon was down meanwhile). */
  set(ms: number): void {
    this.ms = ms
  }

  async advanceTo(to: number, settle: () => Promise<void>): Promise<void> {
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled)
      const next = this.timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0]
      if (!next) break
      this.timers.splice(this.timers.indexOf(next), 1)
      this.ms = Math.max(this.ms, next.at)
      next.fn()
      await settle()
    }
    this.ms = to
  }

  /** Timers still pending (not cancelled). */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length
  }
}
