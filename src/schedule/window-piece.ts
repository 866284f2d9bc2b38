import {mapForeignError} from '../errors/map-foreign-error.js'
import type {DaemonEvent} from '../daemon/daemon-events.js'
import type {DaemonLogFn, DaemonPiece, PieceContext} from '../daemon/daemon-pieces.js'
import type {JobPolicy} from '../daemon/job-policy.js'
import type {JobService} from '../service/job-service-types.js'
import {type Clock, systemClock, type Timer} from '../time/clock.js'
import {policyWindow, windowGate} from './window-gate.js'

/** The events after which a job no longer runs (in this attempt): its window-end timer goes. */
const ENDED: ReadonlySet<DaemonEvent['type']> = new Set<DaemonEvent['type']>(['job:succeeded', 'job:failed', 'job:retry', 'job:duplicate', 'job:cancelled', 'job:dead', 'job:skipped'])

export interface WindowEndOptions {
  jobs: Pick<JobService, 'cancel'>
  /** A job's policy (its window, window_end, override_window); undefined for an unknown job. */
  policyOf: (id: string) => JobPolicy | undefined
  log: DaemonLogFn
  clock?: Clock
  /** The zone of windows without `timezone`; default the host's. */
  defaultZone?: string
}

/**
 * `window_end: cancel`: a job that started inside its window is cancelled through the JobService (status
 * cancelled, reason "window closed") when that window closes. One timer per running windowed job, set
 * when it starts and cleared when it ends. `finish` (the default) and jobs started with `override_window`
 * are left alone.
 */
export class WindowEndPiece implements DaemonPiece {
  readonly name = 'window-end'
  private readonly timers = new Map<string, Timer>()
  private readonly clock: Clock

  constructor(private readonly options: WindowEndOptions) {
    this.clock = options.clock ?? systemClock
  }

  /** Jobs with a window-end timer now (for tests and status). */
  get armed(): string[] {
    return [...this.timers.keys()]
  }

  onDaemonEvent(event: DaemonEvent): void {
    if (event.type === 'job:started') this.arm(event.job.id)
    else if (ENDED.has(event.type) && 'job' in event) this.disarm(event.job.id)
  }

  async close(): Promise<void> {
    for (const id of [...this.timers.keys()]) this.disarm(id)
  }

  private arm(id: string): void {
    this.disarm(id)
    const policy = this.options.policyOf(id)
    if (policy?.windowEnd !== 'cancel' || policy.overrideWindow === true) return
    const window = policyWindow(policy, this.options.defaultZone)
    const now = this.clock.now()
    // A job started outside its window was let through by something else: there is no window of its own to end.
    if (!window?.contains(now)) return
    const closes = window.closesAt(now)
    if (!Number.isFinite(closes)) return
    this.armUntil(id, closes, window.describe())
  }

  /** A timer to `closes`; one that fires early (timers run on another clock than Date.now) is set again. */
  private armUntil(id: string, closes: number, window: string): void {
    this.timers.set(id, this.clock.setTimer(() => {
      if (this.clock.now() < closes) this.armUntil(id, closes, window)
      else this.windowClosed(id, window)
    }, closes - this.clock.now()))
  }

  private disarm(id: string): void {
    this.timers.get(id)?.cancel()
    this.timers.delete(id)
  }

  private windowClosed(id: string, window: string): void {
    this.timers.delete(id)
    try {
      this.options.jobs.cancel(id, 'window closed')
      this.options.log('info', 'job:window-closed', {job: id, window}, 'window_end: cancel: the job is cancelled')
    } catch (error) {
      // It ended in the same instant (H2K_JOB_STATE): nothing is left to cancel.
      this.options.log('warn', 'job:window-cancel-failed', {job: id}, mapForeignError(error).message)
    }
  }
}

/** Register the window gate with the daemon and start the window-end piece. */
export function startWindowPiece(ctx: Pick<PieceContext, 'addGate' | 'clock' | 'jobPolicy' | 'jobs' | 'log'>): WindowEndPiece {
  ctx.addGate(windowGate())
  return new WindowEndPiece({clock: ctx.clock, jobs: ctx.jobs, log: ctx.log, policyOf: ctx.jobPolicy})
}
