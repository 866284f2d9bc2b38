import assert from 'node:assert/strict'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import type {DaemonEvent} from '../../src/daemon/daemon-events.js'
import {definitionOf} from '../../src/daemon/job-definition.js'
import {skipDependents} from '../../src/daemon/dependency-skip.js'
import {JobStore} from '../../src/daemon/store.js'
import {DaemonJobService} from '../../src/service/job-service.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * The JobService on a real store and real files, without a daemon around it (what submit refuses and how
 * cancel/retry/purge move jobs); test/integration/daemon-dag.test.ts runs jobs in a real daemon.
 */
describe('JobService: submit, cancel, retry, purge on a real store', () => {
  let temp: ReturnType<typeof makeTempDir>
  let store: JobStore
  let service: DaemonJobService
  let events: DaemonEvent[]
  let allowed: string
  let outside: string
  let woken: number

  beforeEach(async () => {
    temp = makeTempDir('h2k-job-service-')
    allowed = join(temp.dir, 'allowed')
    outside = join(temp.dir, 'outside')
    for (const d of [allowed, outside, join(temp.dir, 'watch')]) mkdirSync(d)
    for (const name of ['db.raw', 'app.raw', 'web.raw']) writeFileSync(join(allowed, name), Buffer.alloc(65536))
    writeFileSync(join(outside, 'secret.raw'), Buffer.alloc(65536))
    const config = join(temp.dir, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: watch\noutput_dir: out\nallowed_input_dirs: [allowed]\n`)
    const cfg = await loadDaemonConfig({config})
    store = JobStore.open(cfg.outputDir)
    events = []
    woken = 0
    service = new DaemonJobService({abortRunning: () => false, config: () => cfg, emit: (e) => events.push(e), log: () => {}, settle: async () => {}, store, wake: () => woken++})
  })
  afterEach(() => {
    store.close()
    temp.cleanup()
  })

  const code = (expected: string, pattern?: RegExp) => (e: {code?: string; message: string}) => {
    assert.equal(e.code, expected, e.message)
    if (pattern) assert.match(e.message, pattern)
    return true
  }

  it('a batch with depends_on: names resolved to ids, one transaction, queued, job:queued each, the pool woken; inputs real paths; outputs where the daemon puts them', async () => {
    const rows = await service.submit({jobs: [{depends_on: ['db'], input: join(allowed, 'app.raw'), name: 'app', output_dir: '/etc'}, {input: join(allowed, 'db.raw'), name: 'db', retry: {max_retries: 5, retry_on: ['H2K_INPUT_CORRUPT']}}], retry: {backoff: 'fixed'}}, {origin: 'api', requestId: 'req-1'})
    assert.deepEqual(rows.map((r) => [r.name, r.status, r.origin, r.intake_id, r.request_id]), [['app', 'queued', 'api', null, 'req-1'], ['db', 'queued', 'api', null, 'req-1']])
    const [app, db] = rows as [typeof rows[0], typeof rows[0]]
    assert.deepEqual(store.dependenciesOf(app.id), [db.id])
    assert.ok(app.output_path.startsWith(join(temp.dir, 'out')), app.output_path)
    assert.deepEqual(definitionOf(db).policy, {retry: {backoff: 'fixed', maxRetries: 5, retryOn: ['H2K_INPUT_CORRUPT']}})
    assert.deepEqual(definitionOf(app).policy, {dependsOn: [db.id], retry: {backoff: 'fixed'}})
    assert.equal(events.filter((e) => e.type === 'job:queued').length, 2)
    assert.ok(events.every((e) => e.type !== 'job:queued' || e.job.origin === 'api'))
    assert.equal(woken, 1)
    // A later submission may depend on an existing job by id.
    const [web] = await service.submit({depends_on: [app.id], input: join(allowed, 'web.raw')}, {origin: 'schedule', scheduleId: 'nightly'})
    assert.deepEqual(store.dependenciesOf(web!.id), [app.id])
    assert.equal(web!.schedule_id, 'nightly')
  })

  const refusals: Array<[string, () => unknown, string, RegExp]> = [
    ['an input outside allowed_input_dirs', () => ({input: join(outside, 'secret.raw')}), 'H2K_UNSAFE_PATH', /outside allowed_input_dirs/],
    ['a symlink inside allowed_input_dirs leaving it (its target is not said)', () => {
      symlinkSync(join(outside, 'secret.raw'), join(allowed, 'link.raw'))
      return {input: join(allowed, 'link.raw')}
    }, 'H2K_UNSAFE_PATH', /^(?![\s\S]*outside\/secret)[\s\S]*a symbolic link/],
    ['a relative input', () => ({input: 'allowed/db.raw'}), 'H2K_JOB_INVALID', /absolute paths/],
    ['a missing input', () => ({input: join(allowed, 'nope.raw')}), 'H2K_INPUT_NOT_FOUND', /nope\.raw/],
    ['an unknown key (job-file schema)', () => ({input: join(allowed, 'db.raw'), inptu: 'x'}), 'H2K_JOB_INVALID', /unknown key "inptu"/],
    ['an unknown depends_on', () => ({jobs: [{depends_on: ['ghost'], input: join(allowed, 'db.raw')}]}), 'H2K_JOB_INVALID', /jobs\[0\]\.depends_on\[0\]: unknown job "ghost"/],
    ['a cycle (named)', () => ({jobs: [{depends_on: ['web'], input: join(allowed, 'db.raw'), name: 'db'}, {depends_on: ['db'], input: join(allowed, 'app.raw'), name: 'app'}, {depends_on: ['app'], input: join(allowed, 'web.raw'), name: 'web'}]}), 'H2K_JOB_INVALID', /cycle: "db" → "web" → "app" → "db"/],
    ['a retry_on code that is not ours', () => ({input: join(allowed, 'db.raw'), retry: {retry_on: ['H2K_NOT_A_CODE']}}), 'H2K_JOB_INVALID', /H2K_NOT_A_CODE" is not an error code/],
    ['a manifest', () => ({pipeline: {load: {source_path: join(allowed, 'db.raw')}}, version: '1.0'}), 'H2K_JOB_INVALID', /not a manifest/],
    ['not a mapping', () => [1, 2], 'H2K_JOB_INVALID', /expected a mapping/],
  ]
  for (const [what, doc, expected, pattern] of refusals) {
    it(`refuses ${what} (${expected}), recording nothing`, async () => {
      await assert.rejects(service.submit(doc(), {origin: 'api'}), code(expected, pattern))
      assert.deepEqual(store.jobs({}), [])
      assert.deepEqual(events, [])
    })
  }

  it('cancel: a queued job ends cancelled at once (job:cancelled), its dependents skipped (job:skipped); a finished one is H2K_JOB_STATE', async () => {
    const [db, app, web] = await service.submit({jobs: [{input: join(allowed, 'db.raw'), name: 'db'}, {depends_on: ['db'], input: join(allowed, 'app.raw'), name: 'app'}, {depends_on: ['app'], input: join(allowed, 'web.raw'), name: 'web'}]}, {origin: 'api'})
    const done = service.cancel(db!.id, 'change freeze')
    assert.equal(done.status, 'cancelled')
    assert.match(JSON.parse(done.error!).code, /H2K_CANCELLED/)
    assert.deepEqual([store.job(app!.id)!.status, store.job(web!.id)!.status], ['skipped', 'skipped'])
    assert.match(store.historyOf(web!.id).at(-1)!.detail!, new RegExp(`dependency failed: ${app!.id}`))
    assert.deepEqual(events.filter((e) => e.type !== 'job:queued').map((e) => e.type), ['job:cancelled', 'job:skipped', 'job:skipped'])
    assert.throws(() => service.cancel(db!.id, 'again'), code('H2K_JOB_STATE', /is cancelled/))
    // A skipped job cannot be retried on its own while its parent has not succeeded.
    assert.throws(() => service.retry(app!.id), code('H2K_JOB_STATE', new RegExp(`while job ${db!.id} it depends on is cancelled`)))
    // Retry of the cancelled parent brings back its skipped dependents, transitively, attempts restarted.
    const again = service.retry(db!.id)
    assert.deepEqual(again.map((r) => [r.name, r.status, r.attempts]), [['db', 'queued', 0], ['app', 'queued', 0], ['web', 'queued', 0]])
    assert.equal(store.historyOf(db!.id).at(-1)!.detail, 'retried')
    assert.throws(() => service.retry(db!.id), code('H2K_JOB_STATE', /is queued/))
  })

  it('dead jobs: dead() pages the DLQ, purge refuses a job that is not dead, purges one, then all', async () => {
    const rows = await service.submit({jobs: [{input: join(allowed, 'db.raw'), name: 'a'}, {input: join(allowed, 'app.raw'), name: 'b'}, {input: join(allowed, 'web.raw'), name: 'c'}]}, {origin: 'api'})
    for (const r of rows.slice(0, 2)) store.transition(r.id, 'dead', 'test: retries exhausted')
    assert.deepEqual(service.dead({limit: 1}).jobs.length, 1)
    assert.notEqual(service.dead({limit: 1}).nextCursor, null)
    assert.throws(() => service.purge(rows[2]!.id), code('H2K_JOB_STATE', /is queued/))
    assert.equal(service.purge(rows[0]!.id), 1)
    assert.equal(service.purge(), 1)
    assert.deepEqual(store.jobs({}).map((j) => j.name), ['c'])
    assert.equal(service.show(rows[2]!.id.slice(0, 6))?.job.name, 'c')
  })

  it('purge never leaves a dependent without its parent: one id refuses naming them; all takes them along; a retry is job:queued retried', async () => {
    const wave = {jobs: [{input: join(allowed, 'db.raw'), name: 'db'}, {depends_on: ['db'], input: join(allowed, 'app.raw'), name: 'app'}, {depends_on: ['app'], input: join(allowed, 'web.raw'), name: 'web'}]}
    const [db, app, web] = await service.submit(wave, {origin: 'api'})
    const [lone] = await service.submit({input: join(allowed, 'db.raw'), name: 'lone'}, {origin: 'api'})
    for (const id of [db!.id, lone!.id]) store.transition(id, 'dead', 'test: retries exhausted')
    skipDependents({emit: () => {}, log: () => {}, store}, db!.id)
    assert.deepEqual([store.job(app!.id)!.status, store.job(web!.id)!.status], ['skipped', 'skipped'])
    assert.throws(() => service.purge(db!.id), (e: {code?: string; message: string; details?: {dependents?: string[]}}) => {
      assert.equal(e.code, 'H2K_JOB_STATE', e.message)
      assert.deepEqual(e.details?.dependents, [app!.id])
      return true
    })
    assert.deepEqual(store.dependenciesOf(app!.id), [db!.id], 'the edge is still there')
    // A retry brings the chain back: job:queued marked retried (not a new job), no plain job:queued.
    events.length = 0
    service.retry(db!.id)
    assert.deepEqual(events.map((e) => e.type === 'job:queued' && [e.job.name, e.retried]), [['db', true], ['app', true], ['web', true]])
    for (const id of [db!.id, app!.id, web!.id]) store.transition(id, 'dead', 'test: again')
    store.transition(app!.id, 'skipped', 'test: dependency failed')
    store.transition(web!.id, 'skipped', 'test: dependency failed')
    // Purging all: each dead job with its unsucceeded dependents, transitively (db, app, web), and lone.
    assert.equal(service.purge(), 4)
    assert.deepEqual(store.jobs({}).map((j) => j.name), [])
  })

  it('purge --all keeps a dead job one of whose dependents is still unfinished', async () => {
    const [db, app] = await service.submit({jobs: [{input: join(allowed, 'db.raw'), name: 'db'}, {depends_on: ['db'], input: join(allowed, 'app.raw'), name: 'app'}]}, {origin: 'api'})
    store.transition(db!.id, 'dead', 'test: retries exhausted')
    assert.equal(store.job(app!.id)!.status, 'queued')
    assert.equal(service.purge(), 0)
    assert.deepEqual(store.dependenciesOf(app!.id), [db!.id])
  })
})
