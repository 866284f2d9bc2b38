import assert from 'node:assert/strict'

import type {DaemonEvent, DaemonSnapshot, JobInfo} from '../../src/daemon/daemon-events.js'
import {StallDetector, type StallClock} from '../../src/daemon/stall-detector.js'

class FakeClock implements StallClock {
  at = 1_000_000
  private fn: (() => void) | undefined
  period = 0
  now(): number {
    return this.at
  }

  every(ms: number, fn: () => void): () => void {
    this.period = ms
    this.fn = fn
    return () => (this.fn = undefined)
  }

  /** Advance by `ms`, ticking at the detector's period (and once at the end). */
  advance(ms: number): void {
    for (let left = ms; left > 0; ) {
      const step = Math.min(this.period, left)
      this.at += step
      left -= step
      this.fn?.()
    }
  }
}

const job: JobInfo = {fileType: 'vmdk', filename: 'a.vmdk', id: 'j1', intakeId: 'j1', name: 'a', origin: 'drop', sizeBytes: 1}

describe('stall detector (fake clock)', () => {
  let clock: FakeClock
  let snap: DaemonSnapshot
  let emitted: DaemonEvent[]
  let logged: string[]
  let detector: StallDetector
  beforeEach(() => {
    clock = new FakeClock()
    snap = {maxConcurrentJobs: 2, pendingFiles: 0, queued: 0, retryWaiting: 0, running: 1, startedAt: new Date(), state: 'RUNNING'}
    emitted = []
    logged = []
    detector = new StallDetector(60, () => snap, (e) => emitted.push(e), (_level, event) => logged.push(event), clock)
  })

  it('a running job without progress for stall_check_interval stalls once; progress re-arms it', () => {
    clock.advance(59_000)
    assert.equal(emitted.length, 0)
    clock.advance(2_000)
    assert.equal(emitted.length, 1)
    const stalled = emitted[0]!
    assert.equal(stalled.type, 'daemon:stalled')
    assert.deepEqual(stalled.type === 'daemon:stalled' && [stalled.queued, stalled.running, stalled.idleSeconds >= 60], [0, 1, true])
    clock.advance(600_000)
    assert.equal(emitted.length, 1, 'once per stall')
    assert.deepEqual(logged, ['daemon:stalled'])
    detector.onDaemonEvent({at: new Date(), job, phase: 'convert', stage: 'convert', type: 'job:progress'})
    clock.advance(30_000)
    assert.equal(emitted.length, 1)
    clock.advance(31_000)
    assert.equal(emitted.length, 2, 're-armed by progress')
  })

  it('regular progress keeps it quiet; idle, paused, stopping and retry-waiting only are not stalls', () => {
    for (let i = 0; i < 10; i++) {
      clock.advance(50_000)
      detector.onDaemonEvent({at: new Date(), attempt: 1, job, type: 'job:started'})
    }
    assert.equal(emitted.length, 0)
    snap = {...snap, queued: 0, running: 0}
    clock.advance(300_000)
    snap = {...snap, queued: 3, retryWaiting: 3}
    clock.advance(300_000)
    snap = {...snap, queued: 2, retryWaiting: 0, state: 'PAUSED'}
    clock.advance(300_000)
    assert.equal(emitted.length, 0)
    // Resumed: the clock starts from the resume, not from the last progress before the pause.
    snap = {...snap, state: 'RUNNING'}
    clock.advance(45_000)
    assert.equal(emitted.length, 0)
    clock.advance(20_000)
    assert.equal(emitted.length, 1)
    assert.equal(emitted[0]!.type === 'daemon:stalled' && emitted[0]!.queued, 2)
  })

  it('checks a few times per interval, at most once a minute', () => {
    assert.equal(clock.period, 15_000)
    const slow = new StallDetector(3600, () => snap, () => {}, () => {}, clock)
    assert.equal(clock.period, 60_000)
    void slow
  })

  it('queued jobs held by a dispatch gate (a dependency, a time window) are not a stall; one more that could start is', () => {
    snap = {...snap, held: 3, queued: 3, running: 0}
    clock.advance(600_000)
    assert.equal(emitted.length, 0, 'jobs waiting for a window or a parent wait on purpose')
    snap = {...snap, queued: 4}
    clock.advance(61_000)
    assert.equal(emitted.length, 1)
    assert.equal(emitted[0]!.type === 'daemon:stalled' && emitted[0]!.queued, 1)
  })
})
