import assert from 'node:assert/strict'
import {cpSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {parse} from 'yaml'

import {schemaValidator} from '../../src/jobs/schemas.js'
import {parseScheduleKeys} from '../../src/schedule/schedule-keys.js'
import {parseWindow} from '../../src/schedule/time-window.js'
import {ScheduleHarness} from '../helpers/schedule-harness.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const WAVE = new URL('../../examples/waves/wave-1.yaml', import.meta.url).pathname

/** examples/waves/wave-1.yaml is what users copy: a schedule, a window and dependent jobs in one file. */
describe('examples/waves/wave-1.yaml', () => {
  let temp: ReturnType<typeof makeTempDir>
  let h: ScheduleHarness | undefined
  beforeEach(() => {
    temp = makeTempDir('h2k-wave-')
  })
  afterEach(async () => {
    await h?.scheduler.stop()
    h?.close()
    h = undefined
    temp.cleanup()
  })

  it('is a valid `schedules:` item of the daemon configuration (schema and schedule keys)', () => {
    const value = parse(readFileSync(WAVE, 'utf8')) as Record<string, unknown>
    const validate = schemaValidator('daemon')
    assert.ok(validate({command: 'daemon', output_dir: '/out', schedules: [value], watch_dir: '/queue'}), JSON.stringify(validate.errors))
    const spec = parseScheduleKeys(value, {baseDir: '/srv/waves', source: 'config', where: 'wave-1.yaml'})
    assert.equal(spec.id, 'wave-1')
    assert.equal(spec.catchUp, 'one')
    assert.deepEqual((spec.template as {jobs: Array<{input: string}>}).jobs.map((j) => j.input), ['/srv/vms/db01/db01.ova', '/srv/vms/web01/web01.vmdk', '/srv/vms/legacy/legacy.vhdx'])
  })

  it('its window opens Friday 22:00 Berlin time, runs past midnight, and not on the holiday', () => {
    const value = parse(readFileSync(WAVE, 'utf8')) as {window: Parameters<typeof parseWindow>[0]}
    const window = parseWindow(value.window)
    assert.equal(window.contains(Date.parse('2026-12-04T20:59:00Z')), false, 'Friday 21:59 Berlin')
    assert.equal(window.contains(Date.parse('2026-12-04T21:00:00Z')), true, 'Friday 22:00 Berlin')
    assert.equal(window.contains(Date.parse('2026-12-05T04:59:00Z')), true, 'Saturday 05:59 Berlin')
    assert.equal(window.contains(Date.parse('2026-12-06T21:30:00Z')), false, 'Sunday night: not a window day')
    assert.equal(window.contains(Date.parse('2026-12-25T21:30:00Z')), false, 'Friday 25 December: a holiday')
  })

  it('queues its three jobs at its due time, the servers depending on the database, with the wave\'s retry policy', async () => {
    // The example tree: the wave beside a vms/ directory, as in examples/.
    mkdirSync(join(temp.dir, 'waves'))
    cpSync(WAVE, join(temp.dir, 'waves', 'wave-1.yaml'))
    for (const disk of ['db01/db01.ova', 'web01/web01.vmdk', 'legacy/legacy.vhdx']) {
      mkdirSync(join(temp.dir, 'vms', disk, '..'), {recursive: true})
      writeFileSync(join(temp.dir, 'vms', disk), Buffer.alloc(4096))
    }
    // Thursday noon in Berlin; the daemon is down over Friday 22:00 and back on Saturday at 01:00 (catch_up: one).
    h = await ScheduleHarness.open(temp.dir, Date.parse('2026-12-03T11:00:00Z'))
    h.config.allowedInputDirs = [join(temp.dir, 'vms')]
    const spec = parseScheduleKeys(parse(readFileSync(join(temp.dir, 'waves', 'wave-1.yaml'), 'utf8')), {baseDir: join(temp.dir, 'waves'), source: 'config', where: 'wave-1.yaml'})
    h.scheduler.sync([spec])
    await h.scheduler.start()
    assert.equal(h.scheduler.get('wave-1')!.nextRun, Date.parse('2026-12-04T21:00:00Z'))
    await h.restart()
    h.clock.set(Date.parse('2026-12-05T00:00:00Z'))
    await h.scheduler.start()
    const [run] = h.schedules.runs('wave-1')
    assert.equal(run?.outcome, 'fired')
    const jobs = new Map(h.store.jobs().map((j) => [j.name, j]))
    assert.deepEqual([...jobs.keys()].sort(), ['db01', 'legacy', 'web01'])
    const db = jobs.get('db01')!.id
    assert.deepEqual(h.store.dependenciesOf(jobs.get('web01')!.id), [db])
    assert.deepEqual(h.store.dependenciesOf(jobs.get('legacy')!.id), [db])
    assert.deepEqual(h.store.dependenciesOf(db), [])
    for (const job of jobs.values()) {
      assert.equal(job.schedule_id, 'wave-1')
      assert.deepEqual(JSON.parse(job.definition_json).policy.retry, {backoff: 'exponential', maxRetries: 2})
    }
    assert.equal(h.scheduler.get('wave-1')!.nextRun, Date.parse('2027-12-04T21:00:00Z'))
  })
})
