import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {chmodSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {stringify} from 'yaml'

import {definitionOf} from '../../src/daemon/job-definition.js'
import {validateFile} from '../../src/jobs/validate-file.js'
import {createBody} from '../../src/schedule/schedule-cli.js'
import {parseSchedule, parseScheduleKeys} from '../../src/schedule/schedule-keys.js'
import {windowGate} from '../../src/schedule/window-gate.js'
import {ScheduleHarness} from '../helpers/schedule-harness.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
type Refusal = Error & {code?: string; details?: {violations?: Array<{path: string; message: string}>}}

describe('schedules are checked when they are made, and their window is read in their zone', () => {
  let temp: ReturnType<typeof makeTempDir>
  beforeEach(() => {
    temp = makeTempDir('h2k-sched-check-')
  })
  afterEach(() => temp.cleanup())

  it('a window that cannot be read is refused at create (H2K_JOB_INVALID naming window), in the schedule\'s zone', () => {
    const parse = (window: unknown) => () => parseScheduleKeys({cron: '0 1 * * *', job_template: {input: '/x'}, timezone: 'America/Chicago', window}, {source: 'api', where: 'request body'})
    for (const window of ['25:00-06:00', '22:00-22:00', {days: ['someday'], hours: '22:00-06:00'}, {hours: '22:00-06:00', timezone: 'Mars/Olympus'}, {hours: '22:00-06:00', surprise: 1}, 7, '']) {
      assert.throws(parse(window), (e: Refusal) => e.code === 'H2K_JOB_INVALID' && /request body \(s-[0-9a-f]{8}\): window/.test(e.message), JSON.stringify(window))
    }
    assert.equal(parse({days: ['mon-fri'], holidays: ['2026-12-25'], hours: '22:00-06:00'})().window !== undefined, true)
  })

  it('an inline job template is checked against the job-file schema at create (not its inputs), each problem under job_template', async () => {
    const at = {source: 'api' as const, where: 'request body'}
    const refused = async (job_template: unknown, path: RegExp): Promise<void> => {
      await assert.rejects(parseSchedule({cron: '0 1 * * *', id: 'w', job_template}, at), (e: Refusal) => {
        assert.equal(e.code, 'H2K_JOB_INVALID', e.message)
        assert.ok(e.details?.violations?.some((v) => path.test(v.path)), JSON.stringify(e.details))
        return true
      })
    }
    await refused({bogus_key: 1, input: '/x'}, /^job_template\.bogus_key$/)
    await refused({input: '/x', window: '25:00-06:00'}, /^job_template(\.window)?$/)
    await refused({jobs: [{input: '/a', name: 'a'}, {input: '/b', name: 'a'}]}, /^job_template\.jobs\[1\]$/)
    await refused({input: '/x', retry: {retry_on: ['H2K_NO_SUCH_CODE']}}, /^job_template\.retry\.retry_on\[0\]$/)
    await refused({input: 'relative.raw'}, /^job_template\.input$/)
    // Inputs need not exist yet (the disks of a wave may be exported the day before); files are read at each run.
    assert.equal((await parseSchedule({cron: '0 1 * * *', id: 'w', job_template: {input: '/not/there/yet.vmdk'}}, at)).id, 'w')
    assert.equal((await parseSchedule({cron: '0 1 * * *', id: 'w', job_template: {job_file: '/not/there/yet.yaml'}}, at)).id, 'w')
  })

  it('the CLI refuses a bad --window as a usage error naming the flag; a daemon config\'s schedules are checked by validate', async () => {
    await assert.rejects(createBody({cron: '0 1 * * *', input: '/x', timezone: 'America/Chicago', window: '22:00-25:00'}), (e: Refusal) => e.code === 'H2K_USAGE' && /^--window/.test(e.message))
    const config = join(temp.dir, 'daemon.yaml')
    const daemon = {command: 'daemon', output_dir: join(temp.dir, 'out'), watch_dir: join(temp.dir, 'in')}
    writeFileSync(config, stringify({...daemon, schedules: [{cron: '0 1 * * *', id: 'ok', job_template: {input: 'a.raw'}}, {cron: '0 1 * * *', id: 'typo', job_template: {input: 'a.raw'}, window: '22:00-6:00'}]}))
    await assert.rejects(validateFile(config), (e: Refusal) => e.code === 'H2K_JOB_INVALID' && /schedules\[1\] \(typo\): window/.test(e.message))
    writeFileSync(config, stringify({...daemon, schedules: [{cron: '0 1 * * *', id: 'bad-template', job_template: {input: 'a.raw', output_fromat: 'raw'}}]}))
    await assert.rejects(validateFile(config), (e: Refusal) => e.code === 'H2K_JOB_INVALID' && e.details!.violations!.some((v) => v.path === 'job_template.output_fromat'))
  })

  it('a schedule in America/Chicago with window 22:00-06:00 on a UTC host: its jobs wait at 17:00 Chicago time and may start at 23:00 Chicago time', async () => {
    const saved = process.env.TZ
    process.env.TZ = 'UTC'
    try {
      const h = await ScheduleHarness.open(temp.dir, Date.parse('2026-12-03T11:00:00Z'))
      try {
        const string = parseScheduleKeys({cron: '0 2 * * *', id: 'chicago', job_template: {input: h.disk('a.raw')}, timezone: 'America/Chicago', window: '22:00-06:00'}, {source: 'api', where: 't'})
        const object = parseScheduleKeys({cron: '0 2 * * *', id: 'chicago-days', job_template: {input: h.disk('b.raw')}, timezone: 'America/Chicago', window: {days: ['mon-fri'], hours: '22:00-06:00'}}, {source: 'api', where: 't'})
        const own = parseScheduleKeys({cron: '0 2 * * *', id: 'own-zone', job_template: {input: h.disk('c.raw')}, timezone: 'America/Chicago', window: {hours: '22:00-06:00', timezone: 'UTC'}}, {source: 'api', where: 't'})
        const gate = windowGate()
        for (const spec of [string, object, own]) {
          h.scheduler.create(spec)
          const run = await h.scheduler.trigger(spec.id, {})
          const row = h.store.job(run.jobIds[0]!)!
          // Thursday 2026-12-03 23:00 UTC is 17:00 in Chicago; 2026-12-04 05:00 UTC is 23:00 in Chicago.
          const at17Chicago = gate(row, definitionOf(row), Date.parse('2026-12-03T23:00:00Z'))
          const at23Chicago = gate(row, definitionOf(row), Date.parse('2026-12-04T05:00:00Z'))
          if (spec.id === 'own-zone') {
            assert.equal(at17Chicago.due, true, 'a window that names its zone keeps it')
            assert.equal(at23Chicago.due, true)
          } else {
            assert.equal(at17Chicago.due, false, `${spec.id}: closed at 17:00 in Chicago`)
            assert.equal(at17Chicago.due === false && at17Chicago.notBefore, Date.parse('2026-12-04T04:00:00Z'), 'opens at 22:00 Chicago (04:00 UTC)')
            assert.equal(at23Chicago.due, true, `${spec.id}: open at 23:00 in Chicago`)
          }
        }
      } finally {
        await h.scheduler.stop()
        h.store.close()
      }
    } finally {
      if (saved === undefined) delete process.env.TZ
      else process.env.TZ = saved
    }
  })

  it('a sweep file the daemon cannot read is named in the run\'s notes, not dropped silently', function () {
    // lstat fails for a user without search permission on the directory (root is never refused: run as nobody).
    const dir = join(temp.dir, 'sweep')
    mkdirSync(dir)
    writeFileSync(join(dir, 'web01.raw'), Buffer.alloc(4096))
    chmodSync(temp.dir, 0o755)
    chmodSync(dir, 0o744)
    const script = `import {expandTemplate} from ${JSON.stringify(join(ROOT, 'src/schedule/job-template.ts'))}
expandTemplate({sweep_dir: ${JSON.stringify(dir)}}, {allowedInputDirs: [${JSON.stringify(dir)}], source: 'config'}).then((r) => console.log(JSON.stringify({notes: r.notes})), (e) => console.log(JSON.stringify({code: e.code, message: e.message})))`
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {cwd: ROOT, encoding: 'utf8', env: {...process.env, HOME: temp.dir}})
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as {code?: string; message?: string}
    assert.equal(result.code, 'H2K_JOB_INVALID', out)
    assert.match(result.message!, /web01\.raw: cannot be read \(EACCES\), skipped/)
  })
})
