import assert from 'node:assert/strict'

import {parseScheduleKeys} from '../../src/schedule/schedule-keys.js'
import {ScheduleHarness} from '../helpers/schedule-harness.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** A schedule from the API's keys (absolute paths), as the routes parse it. */
const api = (keys: Record<string, unknown>) => parseScheduleKeys(keys, {source: 'api', where: 'test'})
const local = (ms: number, zone: string): string => new Date(ms).toLocaleString('sv-SE', {timeZone: zone})

describe('Scheduler (fake clock, real job store and job service)', () => {
  let temp: ReturnType<typeof makeTempDir>
  let h: ScheduleHarness
  beforeEach(() => {
    temp = makeTempDir('h2k-sched-')
  })
  afterEach(async () => {
    await h?.scheduler.stop()
    h?.close()
    temp.cleanup()
  })

  it('runs a daily 02:30 job across the spring-forward day in America/Chicago: at 03:00 CDT on 2026-03-08, once a day', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-03-06T12:00:00Z'))
    const input = h.disk('vm.raw')
    h.scheduler.create(api({cron: '30 2 * * *', id: 'spring', job_template: {input}, overlap: 'queue', timezone: 'America/Chicago'}))
    await h.scheduler.start()
    await h.advanceTo('2026-03-10T12:00:00Z')
    const runs = h.runs('spring')
    assert.deepEqual(runs.map((r) => r.scheduledFor), ['2026-03-07T08:30:00.000Z', '2026-03-08T08:00:00.000Z', '2026-03-09T07:30:00.000Z', '2026-03-10T07:30:00.000Z'])
    assert.deepEqual(runs.map((r) => local(Date.parse(r.scheduledFor), 'America/Chicago')), ['2026-03-07 02:30:00', '2026-03-08 03:00:00', '2026-03-09 02:30:00', '2026-03-10 02:30:00'])
    assert.ok(runs.every((r) => r.outcome === 'fired' || r.outcome === 'queued'))
    // Each run queued its job, with the schedule's id (origin schedule).
    const jobs = h.store.jobs()
    assert.equal(jobs.length, 4)
    assert.ok(jobs.every((j) => j.origin === 'schedule' && j.schedule_id === 'spring'), JSON.stringify(jobs.map((j) => [j.origin, j.schedule_id])))
    const s = h.scheduler.get('spring')!
    assert.equal(s.runCount, 4)
    assert.equal(s.lastRun, Date.parse('2026-03-10T07:30:00Z'))
    assert.equal(s.nextRun, Date.parse('2026-03-11T07:30:00Z'))
  })

  it('runs a daily 01:30 job once on the fall-back day (2026-11-01), though 01:30 happens twice there', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-10-30T12:00:00Z'))
    h.scheduler.create(api({cron: '30 1 * * *', id: 'fall', job_template: {input: h.disk('vm.raw')}, overlap: 'queue', timezone: 'America/Chicago'}))
    await h.scheduler.start()
    await h.advanceTo('2026-11-03T12:00:00Z')
    const times = h.runs('fall').map((r) => r.scheduledFor)
    assert.deepEqual(times, ['2026-10-31T06:30:00.000Z', '2026-11-01T06:30:00.000Z', '2026-11-02T07:30:00.000Z', '2026-11-03T07:30:00.000Z'])
    assert.equal(times.filter((t) => local(Date.parse(t), 'America/Chicago').startsWith('2026-11-01')).length, 1)
  })

  it('overlap skip: a due time while the previous run is unfinished is skipped-overlap and schedule:missed; once it finished, the next fires', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-06-01T00:30:00Z'))
    h.scheduler.create(api({cron: '0 * * * *', id: 'hourly', job_template: {input: h.disk('vm.raw')}, timezone: 'UTC'}))
    await h.scheduler.start()
    await h.advanceTo('2026-06-01T01:30:00Z')
    await h.advanceTo('2026-06-01T02:30:00Z')
    h.finishAll()
    await h.advanceTo('2026-06-01T03:30:00Z')
    assert.deepEqual(h.runs('hourly').map((r) => `${r.scheduledFor.slice(11, 16)} ${r.outcome} ${r.jobs}`), ['01:00 fired 1', '02:00 skipped-overlap 0', '03:00 fired 1'])
    const missed = h.events.filter((e) => e.type === 'schedule:missed')
    assert.equal(missed.length, 1)
    assert.match(missed[0]!.type === 'schedule:missed' ? missed[0]!.reason : '', /previous run is still going .*overlap: skip/)
    assert.equal(h.events.filter((e) => e.type === 'schedule:fired').length, 2)
    assert.equal(h.scheduler.get('hourly')!.runCount, 2)
  })

  it('overlap queue: submits beside the unfinished run (outcome queued)', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-06-01T00:30:00Z'))
    h.scheduler.create(api({cron: '0 * * * *', id: 'q', job_template: {input: h.disk('vm.raw')}, overlap: 'queue', timezone: 'UTC'}))
    await h.scheduler.start()
    await h.advanceTo('2026-06-01T02:30:00Z')
    assert.deepEqual(h.runs('q').map((r) => r.outcome), ['fired', 'queued'])
    assert.equal(h.store.unfinished().length, 2)
  })

  for (const [policy, fired, missed] of [['none', [], 3], ['one', ['2026-06-04T02:00:00.000Z'], 2], ['all', ['2026-06-02T02:00:00.000Z', '2026-06-03T02:00:00.000Z', '2026-06-04T02:00:00.000Z'], 0]] as const) {
    it(`catch_up ${policy}: after a restart three days later (store reopened), ${fired.length} run(s) fire and ${missed} are schedule:missed`, async () => {
      h = await ScheduleHarness.open(temp.dir, Date.parse('2026-06-01T12:00:00Z'))
      h.scheduler.create(api({catch_up: policy, cron: '0 2 * * *', id: 'nightly', job_template: {input: h.disk('vm.raw')}, overlap: 'queue', timezone: 'UTC'}))
      await h.scheduler.start()
      assert.equal(h.scheduler.get('nightly')!.nextRun, Date.parse('2026-06-02T02:00:00Z'))
      await h.restart()
      h.clock.set(Date.parse('2026-06-04T07:00:00Z'))
      await h.scheduler.start()
      const runs = h.runs('nightly')
      assert.deepEqual(runs.filter((r) => r.outcome !== 'missed').map((r) => r.scheduledFor), fired)
      assert.equal(runs.filter((r) => r.outcome === 'missed').length, missed)
      assert.equal(h.events.filter((e) => e.type === 'schedule:missed').length, missed)
      assert.ok(h.events.filter((e) => e.type === 'schedule:missed').every((e) => e.type === 'schedule:missed' && /daemon was not running/.test(e.reason)))
      assert.equal(h.store.jobs().length, fired.length)
      const s = h.scheduler.get('nightly')!
      assert.equal(s.nextRun, Date.parse('2026-06-05T02:00:00Z'), 'next_run: the first due time after now')
      assert.equal(s.runCount, fired.length)
    })
  }

  it('catch-up is bounded: an hourly schedule down for ten days fires at most 100 runs (catch_up all, the oldest) and says the rest were missed', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-06-01T00:30:00Z'))
    h.scheduler.create(api({catch_up: 'all', cron: '0 * * * *', id: 'hourly', job_template: {input: h.disk('vm.raw')}, overlap: 'queue', timezone: 'UTC'}))
    await h.restart()
    h.clock.set(Date.parse('2026-06-11T00:30:00Z'))
    await h.scheduler.start()
    const runs = h.runs('hourly')
    const fired = runs.filter((r) => r.outcome !== 'missed')
    assert.equal(fired.length, 100)
    assert.deepEqual([fired[0]!.scheduledFor, fired.at(-1)!.scheduledFor], ['2026-06-01T01:00:00.000Z', '2026-06-05T04:00:00.000Z'])
    // The rest: one event for the unlisted ones, and the latest due time by itself.
    assert.deepEqual(runs.filter((r) => r.outcome === 'missed').map((r) => r.scheduledFor).sort(), ['2026-06-05T05:00:00.000Z', '2026-06-11T00:00:00.000Z'])
    assert.match(h.logs.join('\n'), /more than 100 due times were missed/)
    assert.equal(h.scheduler.get('hourly')!.nextRun, Date.parse('2026-06-11T01:00:00Z'))
  })

  it('catch_up one after a long downtime runs the latest due time, not the oldest of those looked at', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-06-01T00:30:00Z'))
    h.scheduler.create(api({catch_up: 'one', cron: '0 * * * *', id: 'hourly', job_template: {input: h.disk('vm.raw')}, timezone: 'UTC'}))
    await h.restart()
    h.clock.set(Date.parse('2026-06-11T00:30:00Z'))
    await h.scheduler.start()
    assert.deepEqual(h.runs('hourly').filter((r) => r.outcome !== 'missed').map((r) => r.scheduledFor), ['2026-06-11T00:00:00.000Z'])
    assert.equal(h.store.jobs().length, 1)
  })

  it('trigger: runs now whatever the timing, beside an unfinished run, and records override_window', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-06-01T12:00:00Z'))
    h.scheduler.create(api({cron: '0 2 * * *', id: 'wave', job_template: {input: h.disk('vm.raw')}, retry: {backoff: 'fixed', max: 1}, timezone: 'UTC', window: '22:00-06:00', window_end: 'cancel'}))
    await h.scheduler.start()
    const first = await h.scheduler.trigger('wave')
    const second = await h.scheduler.trigger('wave', {overrideWindow: true})
    assert.equal(first.outcome, 'fired')
    assert.equal(second.outcome, 'queued')
    assert.equal(second.overrideWindow, true)
    assert.equal(h.store.jobs().length, 2)
    // The schedule's retry reached each job's policy (the job service validated the window keys it carried).
    for (const job of h.store.jobs()) assert.deepEqual(JSON.parse(job.definition_json).policy.retry, {backoff: 'fixed', maxRetries: 1})
    assert.equal(h.scheduler.get('wave')!.nextRun, Date.parse('2026-06-02T02:00:00Z'), 'a trigger does not move the next due time')
    const fired = h.events.filter((e) => e.type === 'schedule:fired')
    assert.deepEqual(fired.map((e) => e.type === 'schedule:fired' && [e.manual, e.overrideWindow]), [[true, false], [true, true]])
  })

  it('a template that cannot run (input outside allowed_input_dirs) is a missed run with the reason; the schedule goes on', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-06-01T00:30:00Z'))
    h.scheduler.create(api({cron: '0 * * * *', id: 'bad', job_template: {input: '/etc/hostname'}, timezone: 'UTC'}))
    await h.scheduler.start()
    await h.advanceTo('2026-06-01T02:30:00Z')
    const runs = h.runs('bad')
    assert.deepEqual(runs.map((r) => r.outcome), ['missed', 'missed'])
    assert.match(h.schedules.runs('bad')[0]!.detail ?? '', /^H2K_UNSAFE_PATH: /)
    assert.equal(h.store.jobs().length, 0)
    await assert.rejects(h.scheduler.trigger('bad'), (e: Error & {code?: string}) => e.code === 'H2K_UNSAFE_PATH')
  })

  it('config sync: the file owns its schedules (added, updated, removed); API ones stay; a config schedule cannot be changed over the API', async () => {
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-06-01T12:00:00Z'))
    const cfg = (keys: Record<string, unknown>) => parseScheduleKeys(keys, {baseDir: temp.dir, source: 'config', where: 'daemon.yaml'})
    const input = h.disk('vm.raw')
    h.scheduler.create(api({cron: '0 3 * * *', id: 'mine', job_template: {input}, timezone: 'UTC'}))
    assert.deepEqual(h.scheduler.sync([cfg({id: 'a', job_template: {input}, schedule: '0 2 * * *', timezone: 'UTC'}), cfg({id: 'b', job_template: {input}, schedule: '0 4 * * *', timezone: 'UTC'})]), {added: ['a', 'b'], removed: [], updated: []})
    const before = h.scheduler.get('a')!
    // Unchanged definition: nothing happens (next_run kept).
    assert.deepEqual(h.scheduler.sync([cfg({id: 'a', job_template: {input}, schedule: '0 2 * * *', timezone: 'UTC'}), cfg({id: 'b', job_template: {input}, schedule: '0 4 * * *', timezone: 'UTC'})]), {added: [], removed: [], updated: []})
    h.clock.set(Date.parse('2026-06-01T13:00:00Z'))
    assert.deepEqual(h.scheduler.sync([cfg({cron: '0 5 * * *', id: 'a', job_template: {input}, timezone: 'UTC'})]), {added: [], removed: ['b'], updated: ['a']})
    assert.equal(h.scheduler.get('a')!.nextRun, Date.parse('2026-06-02T05:00:00Z'))
    assert.equal(h.scheduler.get('a')!.createdAt, before.createdAt)
    assert.deepEqual(h.scheduler.list().map((s) => `${s.id}:${s.source}`), ['a:config', 'mine:api'])
    assert.throws(() => h.scheduler.setEnabled('a', false), /comes from the daemon configuration file/)
    assert.throws(() => h.scheduler.remove('a'), /comes from the daemon configuration file/)
    h.scheduler.setEnabled('mine', false)
    assert.equal(h.scheduler.get('mine')!.nextRun, null, 'disabled: no next run')
    h.scheduler.setEnabled('mine', true)
    assert.equal(h.scheduler.get('mine')!.nextRun, Date.parse('2026-06-02T03:00:00Z'))
  })
})
