import type {DaemonEvent, DaemonSnapshot} from './daemon-events.js'
import type {DaemonLogFn, DaemonPiece} from './daemon-pieces.js'

/** What counts as progress: a job started, moved on, or finished. */
const PROGRESS = new Set<DaemonEvent['type']>(['job:started', 'job:progress', 'job:succeeded', 'job:failed', 'job:retry'])

export interface StallClock {
  now(): number
  every(ms: number, fn: () => void): () => void
}

const realClock: StallClock = {
  every(ms, fn) {
    const timer = setInterval(fn, ms)
    timer.unref()
    return () => clearInterval(timer)
  },
  now: () => Date.now(),
}

/**
 * Reports `daemon:stalled` once when jobs are waiting to run or running but none progressed for
 * `intervalSeconds` (stall_check_interval); re-armed by the next progress. Jobs waiting for a retry are
 * not work that should be moving, and a paused, draining-idle or stopping daemon is not stalled.
 */
export class StallDetector implements DaemonPiece {
  readonly name = 'stall-detector'
  private lastProgress: number
  private stalled = false
  private readonly stop: () => void

  constructor(
    private readonly intervalSeconds: number,
    private readonly snapshot: () => DaemonSnapshot,
    private readonly emit: (event: DaemonEvent) => void,
    private readonly log: DaemonLogFn,
    private readonly clock: StallClock = realClock,
  ) {
    this.lastProgress = clock.now()
    // Check a few times per interval (at most once a minute, at least every 200 ms).
    this.stop = clock.every(Math.min(60_000, Math.max(200, (intervalSeconds * 1000) / 4)), () => this.check())
  }

  onDaemonEvent(event: DaemonEvent): void {
    if (PROGRESS.has(event.type)) this.rearm()
  }

  private rearm(): void {
    this.lastProgress = this.clock.now()
    this.stalled = false
  }

  check(): void {
    const s = this.snapshot()
    // Jobs waiting for a retry, a dependency or a time window are not stalled: they wait on purpose.
    const waiting = s.queued - s.retryWaiting - (s.held ?? 0)
    if (s.state === 'PAUSED' || s.state === 'STOPPING' || (waiting === 0 && s.running === 0)) {
      // Nothing should be moving: the clock starts again when something should.
      this.rearm()
      return
    }
    const idleMs = this.clock.now() - this.lastProgress
    if (this.stalled || idleMs < this.intervalSeconds * 1000) return
    this.stalled = true
    const idleSeconds = Math.round(idleMs / 1000)
    this.log('warn', 'daemon:stalled', {idle_s: idleSeconds, queued: waiting, running: s.running}, `no job progressed for ${idleSeconds} s while jobs are queued or running`)
    this.emit({at: new Date(this.clock.now()), idleSeconds, queued: waiting, running: s.running, type: 'daemon:stalled'})
  }

  async close(): Promise<void> {
    this.stop()
  }
}
