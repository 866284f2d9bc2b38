import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import type {DaemonEvent} from '../../src/daemon/daemon-events.js'
import {definitionOf} from '../../src/daemon/job-definition.js'
import {jobInfo} from '../../src/daemon/job-info.js'
import {policyFromDocument} from '../../src/daemon/job-policy.js'
import {type JobRow, JobStore} from '../../src/daemon/store.js'
import {dependencyGate, notBeforeGate} from '../../src/daemon/dispatch-gate.js'
import {dueJobs} from '../../src/daemon/due-jobs.js'
import {PumpDependencies} from '../../src/daemon/pump-dependencies.js'
import {GateSet} from '../../src/daemon/gate-set.js'
import {windowGate} from '../../src/schedule/window-gate.js'
import {WindowEndPiece} from '../../src/schedule/window-piece.js'
import {DaemonJobService} from '../../src/service/job-service.js'
import type {Clock} from '../../src/time/clock.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** A clock the test moves: timers fire when it passes their time, never by wall time. */
class FakeClock implements Clock {
  private readonly timers: Array<{at: number; fn: () => void; live: boolean}> = []
  constructor(private current: number) {}
  now(): number {
    return this.current
  }
  setTimer(fn: () => void, ms: number): {cancel(): void} {
    const timer = {at: this.current + ms, fn, live: true}
    this.timers.push(timer)
    return {cancel: () => (timer.live = false)}
  }
  get pending(): number[] {
    return this.timers.filter((t) => t.live).map((t) => t.at)
  }
  advanceTo(at: number): void {
    this.current = at
    for (const timer of this.timers) {
      if (timer.live && timer.at <= at) {
        timer.live = false
        timer.fn()
      }
    }
  }
}

const at = (iso: string): number => Date.parse(iso)

/**
 * Time windows on a real store and the real JobService, with injected instants: what policyFromDocument
 * keeps of the window keys (override_window never from a dropped file), the window gate's answers on stored
 * rows, and window_end: cancel through JobService.cancel on a fake clock. test/integration/daemon-windows.test.ts
 * runs them in a real daemon.
 */
describe('time windows: policy, gate and window_end on a real store', () => {
  let temp: ReturnType<typeof makeTempDir>
  let store: JobStore
  let service: DaemonJobService
  let events: DaemonEvent[]
  let aborted: Array<[string, string]>
  let allowed: string

  beforeEach(async () => {
    temp = makeTempDir('h2k-windows-')
    allowed = join(temp.dir, 'allowed')
    for (const d of [allowed, join(temp.dir, 'watch')]) mkdirSync(d)
    for (const name of ['db.raw', 'app.raw', 'web.raw']) writeFileSync(join(allowed, name), Buffer.alloc(65536))
    const config = join(temp.dir, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: watch\noutput_dir: out\nallowed_input_dirs: [allowed]\n`)
    const cfg = await loadDaemonConfig({config})
    store = JobStore.open(cfg.outputDir)
    events = []
    aborted = []
    service = new DaemonJobService({abortRunning: (id, reason) => (aborted.push([id, reason]), true), config: () => cfg, emit: (e) => events.push(e), log: () => {}, settle: async () => {}, store, wake: () => {}})
  })
  afterEach(() => {
    store.close()
    temp.cleanup()
  })

  const wave = (allowedDir: string) => ({
    jobs: [
      {input: join(allowedDir, 'db.raw'), name: 'db', window_end: 'cancel'},
      {input: join(allowedDir, 'app.raw'), name: 'app'},
      {input: join(allowedDir, 'web.raw'), name: 'web', override_window: true, window: '01:00-05:00'},
    ],
    window: {days: ['mon-fri'], holidays: ['2026-12-25'], hours: '22:00-06:00', timezone: 'UTC'},
  })

  it('submit keeps the window keys per job (a job\'s own over the batch\'s), override_window from the API', async () => {
    const [db, app, web] = await service.submit(wave(allowed), {origin: 'api'})
    const batchWindow = {days: ['mon-fri'], holidays: ['2026-12-25'], hours: '22:00-06:00', timezone: 'UTC'}
    assert.deepEqual(definitionOf(db!).policy, {window: batchWindow, windowEnd: 'cancel'})
    assert.deepEqual(definitionOf(app!).policy, {window: batchWindow})
    assert.deepEqual(definitionOf(web!).policy, {overrideWindow: true, window: '01:00-05:00'})
  })

  it('override_window is left out for a dropped job file (origin drop), kept for the API and schedules', () => {
    const keys = {override_window: true, window: '22:00-06:00', window_end: 'cancel' as const}
    assert.deepEqual(policyFromDocument(keys, undefined, 'drop'), {window: '22:00-06:00', windowEnd: 'cancel'})
    assert.deepEqual(policyFromDocument({}, keys, 'drop'), {window: '22:00-06:00', windowEnd: 'cancel'}, 'batch level too')
    assert.equal(policyFromDocument(keys, undefined, 'schedule').overrideWindow, true)
    assert.equal(policyFromDocument({override_window: false}, keys, 'api').overrideWindow, undefined, 'a job may turn its batch\'s override off')
  })

  it('submit refuses a window parseWindow refuses (unknown zone), recording nothing', async () => {
    await assert.rejects(service.submit({input: join(allowed, 'db.raw'), window: {hours: '22:00-06:00', timezone: 'Mars/Base'}}, {origin: 'api'}), (e: {code?: string; message: string}) =>
      e.code === 'H2K_JOB_INVALID' && /window\.timezone: "Mars\/Base" is not an IANA time zone/.test(e.message))
    assert.deepEqual(store.jobs({}), [])
  })

  it('the gate: due inside the window; outside, not_before = the next opening with the reason; override lets it through', async () => {
    const [db, , web] = await service.submit(wave(allowed), {origin: 'api'})
    const gate = windowGate()
    const ask = (row: JobRow, now: number) => gate(store.job(row.id)!, definitionOf(store.job(row.id)!), now)
    assert.deepEqual(ask(db!, at('2026-12-02T23:00:00Z')), {due: true}, 'Wednesday night')
    assert.deepEqual(ask(db!, at('2026-12-03T12:00:00Z')), {due: false, notBefore: at('2026-12-03T22:00:00Z'), reason: 'outside window 22:00-06:00 mon-fri UTC, not on 1 holiday, opens 2026-12-03T22:00:00.000Z'})
    // Friday night into Saturday is Friday's; Saturday night is closed until Monday night.
    assert.deepEqual(ask(db!, at('2026-12-05T05:00:00Z')), {due: true})
    const saturday = ask(db!, at('2026-12-05T23:00:00Z'))
    assert.equal(saturday.due ? undefined : saturday.notBefore, at('2026-12-07T22:00:00Z'))
    // The holiday (a Friday) does not open; the next opening is Monday night.
    const christmas = ask(db!, at('2026-12-25T21:00:00Z'))
    assert.equal(christmas.due ? undefined : christmas.notBefore, at('2026-12-28T22:00:00Z'))
    assert.deepEqual(ask(web!, at('2026-12-03T12:00:00Z')), {due: true}, 'override_window')
    // What the daemon's pump does with a not-due answer: ctl jobs reads it back from the store.
    const decision = ask(db!, at('2026-12-03T12:00:00Z'))
    assert.ok(!decision.due)
    store.setWait(db!.id, decision.notBefore, decision.reason)
    assert.deepEqual([store.job(db!.id)!.status, store.job(db!.id)!.not_before, store.job(db!.id)!.wait_reason], ['queued', at('2026-12-03T22:00:00Z'), decision.reason])
    // Asked again with the stored answer: the same until the opening, due from it on.
    assert.deepEqual(ask(db!, at('2026-12-03T21:59:59Z')), decision)
    assert.deepEqual(ask(db!, at('2026-12-03T22:00:00Z')), {due: true})
    // A not_before another gate stored (a schedule's, a dependency's reason) is not taken for the window's.
    store.setWait(db!.id, at('2026-12-10T00:00:00Z'), 'not before 2026-12-10T00:00:00.000Z')
    assert.deepEqual(ask(db!, at('2026-12-03T23:00:00Z')), {due: true})
  })

  it('the gate holds a stored job whose window this host cannot judge (its zone unknown here), saying why', () => {
    const row = store.insertJob({definition_json: JSON.stringify({filename: 'x.raw', policy: {window: {hours: '22:00-06:00', timezone: 'Gone/Zone'}}, settings: {}, size: 1}), id: 'j-gone', name: 'x', output_path: join(temp.dir, 'out', 'x'), source_path: 'x.raw', vm_path: join(allowed, 'db.raw')})
    const decision = windowGate()(row, definitionOf(row), at('2026-12-03T12:00:00Z'))
    assert.ok(!decision.due)
    assert.equal(decision.notBefore, null)
    assert.match(decision.reason, /^window cannot be judged: window\.timezone: "Gone\/Zone" is not an IANA time zone/)
  })

  it('the pump asks the gates about every waiting job, not only up to the free slots: a held job says why while the pool is full', async () => {
    const [first] = await service.submit({input: join(allowed, 'app.raw'), name: 'first'}, {origin: 'api'})
    const [held] = await service.submit({input: join(allowed, 'db.raw'), name: 'held', window: {hours: '01:00-02:00', timezone: 'UTC'}}, {origin: 'api'})
    const [free] = await service.submit({input: join(allowed, 'web.raw'), name: 'free'}, {origin: 'api'})
    const clock = new FakeClock(at('2026-12-03T12:00:00Z'))
    const dependencies = new PumpDependencies(store)
    const gates = new GateSet([notBeforeGate, dependencyGate(dependencies), windowGate()], () => {}, clock)
    const ctx = {dependencies, emit: () => {}, gates, log: () => {}, settle: async () => {}, store}
    const reason = `outside window 01:00-02:00 UTC, opens ${new Date(at('2026-12-04T01:00:00Z')).toISOString()}`
    try {
      // One slot: `first` starts; `held` behind it is asked anyway and says why; `free` is due but waits for a slot.
      assert.deepEqual(dueJobs(ctx, () => false, 1, clock.now()).map((r) => r.name), ['first'])
      assert.deepEqual([store.job(held!.id)!.not_before, store.job(held!.id)!.wait_reason], [at('2026-12-04T01:00:00Z'), reason])
      assert.deepEqual([store.job(free!.id)!.wait_reason, store.job(first!.id)!.wait_reason], [null, null])
      // The pool full (no slot at all): a job submitted now is asked too.
      const [late] = await service.submit({input: join(allowed, 'db.raw'), name: 'late', window: {hours: '01:00-02:00', timezone: 'UTC'}}, {origin: 'api'})
      assert.deepEqual(dueJobs(ctx, () => false, 0, clock.now()), [])
      assert.equal(store.job(late!.id)!.wait_reason, reason)
      // The gates' wake timer runs on the daemon's clock (an hour at most, then the pump asks again).
      assert.deepEqual(clock.pending, [clock.now() + 3_600_000])
    } finally {
      gates.close()
    }
  })

  it('the pump asks at most MAX_ASKED_PER_PUMP waiting jobs beyond those it starts, and never one whose stored not_before has not come', async () => {
    const {MAX_ASKED_PER_PUMP} = await import('../../src/daemon/due-jobs.js')
    const definition = JSON.stringify({filename: 'x.raw', policy: {window: {hours: '01:00-02:00', timezone: 'UTC'}}, settings: {}, size: 1})
    const rows = store.transaction(() => Array.from({length: MAX_ASKED_PER_PUMP + 5}, (_, i) => store.insertJob({definition_json: definition, id: `w${String(i).padStart(5, '0')}`, name: 'x', output_path: join(temp.dir, 'out', `x${i}`), source_path: 'x.raw', vm_path: join(allowed, 'db.raw')})))
    const clock = new FakeClock(at('2026-12-03T12:00:00Z'))
    let calls = 0
    const window = windowGate()
    const gates = new GateSet([(row, def, now) => (calls++, window(row, def, now))], () => {}, clock)
    const ctx = {dependencies: new PumpDependencies(store), emit: () => {}, gates, log: () => {}, settle: async () => {}, store}
    const held = () => rows.filter((r) => store.job(r.id)!.wait_reason !== null).length
    try {
      assert.deepEqual(dueJobs(ctx, () => false, 0, clock.now()), [])
      assert.deepEqual([calls, held()], [MAX_ASKED_PER_PUMP, MAX_ASKED_PER_PUMP], 'the oldest ones first')
      // The next pump skips those whose stored not_before has not come and asks the rest.
      assert.deepEqual(dueJobs(ctx, () => false, 0, clock.now()), [])
      assert.deepEqual([calls, held()], [MAX_ASKED_PER_PUMP + 5, MAX_ASKED_PER_PUMP + 5])
      assert.deepEqual(dueJobs(ctx, () => false, 0, clock.now()), [])
      assert.equal(calls, MAX_ASKED_PER_PUMP + 5, 'nothing is asked again before the window opens')
    } finally {
      gates.close()
    }
  })

  it('a pump reads the dependencies of all its waiting jobs in one statement, and still holds a child of a queued parent and skips one of a failed parent', () => {
    const definition = JSON.stringify({filename: 'x.raw', settings: {}, size: 1})
    const job = (id: string, dependsOn?: string[]) => store.insertJob({definition_json: definition, id, name: id, output_path: join(temp.dir, 'out', id), source_path: 'x.raw', vm_path: join(allowed, 'db.raw'), ...(dependsOn ? {depends_on: dependsOn} : {})})
    const parent = job('parent')
    const child = job('child', [parent.id])
    for (let i = 0; i < 30; i++) job(`free${String(i).padStart(2, '0')}`)
    const reads = {bulk: 0, single: 0}
    const counting = Object.assign(Object.create(store) as JobStore, {
      dependenciesOf: (id: string) => (reads.single++, store.dependenciesOf(id)),
      dependenciesOfUnfinished: () => (reads.bulk++, store.dependenciesOfUnfinished()),
    })
    const dependencies = new PumpDependencies(counting)
    const clock = new FakeClock(at('2026-12-03T12:00:00Z'))
    const gates = new GateSet([notBeforeGate, dependencyGate(dependencies)], () => {}, clock)
    const ctx = {dependencies, emit: () => {}, gates, log: () => {}, settle: async () => {}, store: counting}
    try {
      assert.deepEqual(dueJobs(ctx, () => false, 2, clock.now()).map((r) => r.id), ['parent', 'free00'])
      assert.deepEqual(reads, {bulk: 1, single: 0}, 'one read for 32 waiting jobs, none per job')
      assert.equal(store.job(child.id)!.wait_reason, 'waiting for parent (queued)')
      store.transition(parent.id, 'running', 'started')
      store.transition(parent.id, 'failed', 'broken', {completed_at: new Date().toISOString()})
      assert.deepEqual(dueJobs(ctx, () => false, 1, clock.now()).map((r) => r.id), ['free00'])
      assert.equal(store.job(child.id)!.status, 'skipped')
      assert.deepEqual(reads, {bulk: 2, single: 0})
      // Outside a pump (the JobService explaining a job), the store is read.
      assert.deepEqual(dependencies.dependenciesOf(child.id), [parent.id])
      assert.equal(reads.single, 1)
    } finally {
      gates.close()
    }
  })

  it('window_end: cancel: a job started inside its window is cancelled through the JobService when it closes; finish and override are left alone', async () => {
    const [db, app, web] = await service.submit(wave(allowed), {origin: 'api'})
    const clock = new FakeClock(at('2026-12-02T23:00:00Z'))
    const piece = new WindowEndPiece({clock, jobs: service, log: () => {}, policyOf: (id) => definitionOf(store.job(id)!).policy})
    for (const row of [db!, app!, web!]) {
      const running = store.transition(row.id, 'running', 'started')
      piece.onDaemonEvent({at: new Date(clock.now()), attempt: 1, job: jobInfo(running), type: 'job:started'})
    }
    assert.deepEqual(piece.armed, [db!.id], 'only the window_end: cancel job')
    assert.deepEqual(clock.pending, [at('2026-12-03T06:00:00Z')])
    clock.advanceTo(at('2026-12-03T05:59:59Z'))
    assert.deepEqual(aborted, [])
    clock.advanceTo(at('2026-12-03T06:00:00Z'))
    assert.deepEqual(aborted, [[db!.id, 'window closed']], 'the running job is aborted with the reason')
    assert.deepEqual(piece.armed, [])
  })

  it('window_end: the timer goes when the job ends first, and a job started outside its window (overridden) gets none', async () => {
    const [db] = await service.submit(wave(allowed), {origin: 'api'})
    const clock = new FakeClock(at('2026-12-02T23:00:00Z'))
    const piece = new WindowEndPiece({clock, jobs: service, log: () => {}, policyOf: (id) => definitionOf(store.job(id)!).policy})
    const running = store.transition(db!.id, 'running', 'started')
    piece.onDaemonEvent({at: new Date(clock.now()), attempt: 1, job: jobInfo(running), type: 'job:started'})
    assert.deepEqual(piece.armed, [db!.id])
    piece.onDaemonEvent({at: new Date(clock.now()), attempt: 1, durationMs: 5, job: jobInfo(running), maxRetries: 0, outputBytes: 1, outputPath: '/x', type: 'job:succeeded'})
    assert.deepEqual([piece.armed, clock.pending], [[], []])
    clock.advanceTo(at('2026-12-03T06:00:00Z'))
    assert.deepEqual(aborted, [])
    // Started at noon (outside the window: only an override lets that happen): nothing to end.
    clock.advanceTo(at('2026-12-03T12:00:00Z'))
    piece.onDaemonEvent({at: new Date(clock.now()), attempt: 2, job: jobInfo(running), type: 'job:started'})
    assert.deepEqual(piece.armed, [])
    await piece.close()
  })
})
