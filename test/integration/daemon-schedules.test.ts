import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {cpSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import Database from 'better-sqlite3'
import {parse, stringify} from 'yaml'

import {jobs, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {expectValid} from '../helpers/openapi-check.js'
import {ovfText} from '../helpers/ovf-fixtures.js'
import {convertFixture, makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {CronExpression} from '../../src/schedule/cron-expression.js'

const WAVE = new URL('../../examples/waves/wave-1.yaml', import.meta.url).pathname
const MiB = 1024 * 1024
/** The next due time of a cron expression in Berlin from now (the wave's date is fixed; the test runs on any date). */
const nextBerlin = (cron: string): string => new Date(new CronExpression(cron, 'Europe/Berlin').next(Date.now())!).toISOString()

/** The VMs examples/waves/wave-1.yaml names (../vms/… beside waves/): small blank disks, nothing to fix. */
function makeVms(root: string): void {
  const raw = makePatternedRaw(join(root, 'expected.raw'), 8 * MiB, [{length: 64 * 1024, offset: 0, pattern: 0x5a}, {length: 512, offset: 8 * MiB - 512, pattern: 0x6b}])
  const vms = join(root, 'vms')
  mkdirSync(join(vms, 'web01'), {recursive: true})
  convertFixture(raw, join(vms, 'web01', 'web01.vmdk'), 'vmdk', ['subformat=streamOptimized'])
  mkdirSync(join(vms, 'db01'))
  convertFixture(raw, join(vms, 'db01', 'db01-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
  writeFileSync(join(vms, 'db01', 'db01.ovf'), ovfText('db01', [{href: 'db01-disk1.vmdk', id: 'vmdisk1'}]))
  execFileSync('tar', ['-cf', 'db01.ova', 'db01.ovf', 'db01-disk1.vmdk'], {cwd: join(vms, 'db01')})
  mkdirSync(join(vms, 'legacy'))
  convertFixture(raw, join(vms, 'legacy', 'legacy.vhdx'), 'vhdx')
}

/** A daemon configuration in <root>/waves/ (the wave's relative paths resolve as in examples/). */
function writeConfig(root: string, name: string, keys: Record<string, unknown>): {config: string; out: string} {
  const out = join(root, `out-${name}`)
  const config = join(root, 'waves', `${name}.yaml`)
  writeFileSync(config, stringify({allowed_input_dirs: ['../vms'], command: 'daemon', fix: false, output_dir: out, watch_dir: join(root, `queue-${name}`), ...keys}))
  return {config, out}
}

const apiPort = (d: RunningDaemon): number => Number(/api:listening .*port=(\d+)/.exec(d.stderr())?.[1])

async function call(port: number, method: string, path: string, body?: unknown): Promise<{status: number; body: Record<string, unknown>}> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {headers: {'Content-Type': 'application/json'}, method, ...(body === undefined ? {} : {body: JSON.stringify(body)})})
  const value = (await response.json()) as Record<string, unknown>
  expectValid(method, path, response.status, value)
  return {body: value, status: response.status}
}

/** Every job of the run succeeded, the database's before any server that depends on it started. */
function assertWaveConverted(out: string, ids: readonly string[]): void {
  const rows = jobs(out).filter((j) => ids.includes(j.id))
  assert.deepEqual(rows.map((j) => j.name).sort(), ['db01', 'legacy', 'web01'])
  assert.ok(rows.every((j) => j.status === 'succeeded'), JSON.stringify(rows.map((j) => [j.name, j.status, j.error])))
  const db = rows.find((j) => j.name === 'db01')!
  for (const server of rows.filter((j) => j.name !== 'db01')) assert.ok(server.started_at! >= db.completed_at!, `${server.name} started ${server.started_at}, before db01 completed ${db.completed_at}`)
}

describe('daemon: schedules (real daemon processes)', function () {
  this.timeout(180_000)
  const suite = daemonSuite('h2k-schedules-')

  before(() => {
    makeVms(suite.dir)
    mkdirSync(join(suite.dir, 'waves'))
    cpSync(WAVE, join(suite.dir, 'waves', 'wave-1.yaml'))
  })

  it('a wave due while the daemon was down is caught up when it starts again, and its jobs are converted in dependency order', async () => {
    // The wave as shipped, as a schedules: item — without its window (window behaviour is the window gate's, tested there).
    const {window: _window, ...wave} = parse(readFileSync(WAVE, 'utf8')) as Record<string, unknown>
    const {config, out} = writeConfig(suite.dir, 'catch-up', {schedules: [wave]})
    const first = await startDaemon(['--config', config], out)
    suite.daemons.push(first)
    await until('schedules synced', () => first.stderr().includes('schedules:synced added=wave-1'), 10_000, first)
    first.child.kill('SIGTERM')
    assert.equal(await first.exited, 0, first.stderr())
    // Down across its due time: the store says it was due two hours ago.
    const db = new Database(join(out, '.daemon', 'jobs.db'))
    const due = Date.now() - 2 * 3600_000
    db.prepare('UPDATE schedules SET next_run = ? WHERE id = ?').run(due, 'wave-1')
    db.close()
    const second = await startDaemon(['--config', config], out)
    suite.daemons.push(second)
    await until('the wave converted', () => jobs(out).length === 3 && jobs(out).every((j) => j.status === 'succeeded' || j.status === 'failed'), 120_000, second)
    assertWaveConverted(out, jobs(out).map((j) => j.id))
    assert.match(second.stderr(), /schedule:fired .*catch_up=true/)
    const store = new Database(join(out, '.daemon', 'jobs.db'), {readonly: true})
    try {
      const row = store.prepare('SELECT run_count, last_run, next_run FROM schedules WHERE id = ?').get('wave-1') as {run_count: number; last_run: number; next_run: number}
      assert.equal(row.run_count, 1)
      assert.ok(row.next_run > Date.now(), 'the next due time is ahead again')
      const runs = store.prepare('SELECT outcome, scheduled_for FROM schedule_runs WHERE schedule_id = ?').all('wave-1') as Array<{outcome: string; scheduled_for: number}>
      assert.deepEqual(runs, [{outcome: 'fired', scheduled_for: due}])
      assert.ok((store.prepare("SELECT COUNT(*) AS n FROM jobs WHERE origin = 'schedule' AND schedule_id = 'wave-1'").get() as {n: number}).n === 3)
    } finally {
      store.close()
    }
  })

  it('over the API and the CLI: create the wave from its file and a schedule from the seed\'s flags, list, refuse what cannot run, disable, enable, trigger (held by its window, then --now --override-window), delete; the file\'s schedules are read-only; one 404; every answer matches openapi.yaml', async () => {
    const {config, out} = writeConfig(suite.dir, 'api', {api: {enabled: true, port: 0}, schedules: [{cron: '0 3 * * *', id: 'from-file', job_template: {input: '../vms/legacy/legacy.vhdx'}, timezone: 'UTC'}]})
    const d = await startDaemon(['--config', config], out)
    suite.daemons.push(d)
    await until('api listening', () => apiPort(d) > 0, 10_000, d)
    const port = apiPort(d)
    const url = ['--url', `http://127.0.0.1:${port}`]

    const created = await runCli(['schedule', 'create', '--file', join(suite.dir, 'waves', 'wave-1.yaml'), ...url, '--json'])
    assert.equal(created.code, 0, created.stdout + created.stderr)
    const schedule = (created.json as {schedule: Record<string, unknown>}).schedule
    assert.equal(schedule.id, 'wave-1')
    assert.equal(schedule.source, 'api')
    assert.equal(schedule.next_run, nextBerlin('0 22 4 12 *'))
    assert.equal((schedule.job_template as {jobs: Array<{input: string}>}).jobs[0]!.input, join(suite.dir, 'vms', 'db01', 'db01.ova'))

    const listed = await call(port, 'GET', '/api/v1/schedules')
    assert.deepEqual((listed.body.schedules as Array<{id: string; source: string}>).map((s) => `${s.id}:${s.source}`), ['from-file:config', 'wave-1:api'])
    const table = await runCli(['schedule', 'list', ...url])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, new RegExp(`^wave-1\\s+on\\s+0 22 4 12 \\*\\s+Europe/Berlin\\s+${nextBerlin('0 22 4 12 *')}`, 'm'))

    const legacy = join(suite.dir, 'vms', 'legacy', 'legacy.vhdx')
    const duplicate = await call(port, 'POST', '/api/v1/schedules', {cron: '0 1 * * *', id: 'wave-1', job_template: {input: legacy}})
    assert.equal(duplicate.status, 409)
    assert.equal((duplicate.body.error as {code: string}).code, 'H2K_JOB_STATE')
    const invalid = await call(port, 'POST', '/api/v1/schedules', {cron: '0 1 * *', job_template: {input: '/x'}})
    assert.equal(invalid.status, 400)
    assert.match(String((invalid.body.error as {message: string}).message), /has 4 fields/)
    // Refused when made, not found on the wave's night: a window that cannot be read, a template that is not a job document.
    const badWindow = await call(port, 'POST', '/api/v1/schedules', {cron: '0 1 * * *', job_template: {input: legacy}, window: '25:00-06:00'})
    assert.equal(badWindow.status, 400)
    assert.equal((badWindow.body.error as {code: string}).code, 'H2K_JOB_INVALID')
    assert.match((badWindow.body.error as {message: string}).message, /request body \(s-[0-9a-f]{8}\): window/)
    const badTemplate = await call(port, 'POST', '/api/v1/schedules', {cron: '0 1 * * *', job_template: {bogus_key: 1, input: legacy}})
    assert.equal(badTemplate.status, 400)
    assert.equal((badTemplate.body.error as {code: string}).code, 'H2K_JOB_INVALID')
    assert.deepEqual((badTemplate.body.error as {details: {violations: Array<{path: string}>}}).details.violations.map((v) => v.path), ['job_template.bogus_key'])
    assert.equal(((await call(port, 'GET', '/api/v1/schedules')).body.schedules as unknown[]).length, 2, 'nothing refused was stored')
    const fileOwned = await call(port, 'PATCH', '/api/v1/schedules/from-file', {enabled: false})
    assert.equal(fileOwned.status, 409)
    assert.equal((fileOwned.body.error as {code: string}).code, 'H2K_JOB_STATE')
    assert.equal((await call(port, 'DELETE', '/api/v1/schedules/from-file')).status, 409)
    // One error mapper: an unknown job and an unknown schedule are the same 404.
    for (const path of ['/api/v1/jobs/zzzzzzzz', '/api/v1/schedules/zzzz']) {
      const missing = await call(port, 'GET', path)
      assert.equal(missing.status, 404, path)
      assert.equal((missing.body.error as {code: string}).code, 'H2K_NOT_FOUND', path)
      assert.equal((missing.body.error as {details?: unknown}).details, undefined, path)
    }

    const disabled = await runCli(['schedule', 'disable', 'wave-1', ...url, '--json'])
    assert.equal(disabled.code, 0, disabled.stderr)
    assert.equal((disabled.json as {schedule: {next_run: unknown; enabled: boolean}}).schedule.next_run, null)

    // The seed's flags, with a window that is closed now in Chicago (and open now on a UTC clock: the window is the schedule's zone's).
    const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16)
    const window = `${hhmm(Date.now() - 3600_000)}-${hhmm(Date.now() + 3600_000)}`
    const seed = await runCli(['schedule', 'create', '--id', 'closed', '--cron', '0 3 * * *', '--timezone', 'America/Chicago', '--window', window, '--retry-max', '2', '--retry-backoff', 'fixed', '--input', legacy, ...url, '--json'])
    assert.equal(seed.code, 0, seed.stdout + seed.stderr)
    const closed = (await call(port, 'GET', '/api/v1/schedules/closed')).body.schedule as Record<string, unknown>
    assert.deepEqual([closed.cron, closed.timezone, closed.window, closed.retry, closed.job_template], ['0 3 * * *', 'America/Chicago', window, {backoff: 'fixed', max: 2}, {input: legacy}])
    assert.equal(closed.next_run, new Date(new CronExpression('0 3 * * *', 'America/Chicago').next(Date.now())!).toISOString())

    // Triggered without the override: its job waits queued, saying why (a schedule's job held by its window in a real daemon).
    const held = await call(port, 'POST', '/api/v1/schedules/closed/trigger', {})
    assert.equal(held.status, 201)
    const heldId = (held.body.run as {job_ids: string[]}).job_ids[0]!
    await until('the held job says why it waits', () => (jobs(out).find((j) => j.id === heldId) as {wait_reason?: string | null} | undefined)?.wait_reason, 10_000, d)
    const waiting = (await call(port, 'GET', `/api/v1/jobs/${heldId}`)).body.job as {status: string; wait_reason: string | null; not_before: string | null}
    assert.equal(waiting.status, 'queued')
    assert.match(waiting.wait_reason!, new RegExp(`^outside window ${window}.*America/Chicago`))
    assert.ok(Date.parse(waiting.not_before!) > Date.now() + 3600_000, `opens in Chicago hours from now: ${waiting.not_before}`)

    // The emergency override: the same schedule's run starts now.
    const triggered = await runCli(['schedule', 'trigger', 'closed', '--now', '--override-window', ...url, '--json'])
    assert.equal(triggered.code, 0, triggered.stdout + triggered.stderr)
    const run = (triggered.json as {run: {outcome: string; job_ids: string[]; override_window: boolean}}).run
    assert.equal(run.outcome, 'queued', 'submitted beside the earlier run that still waits')
    assert.equal(run.override_window, true)
    await until('the overriding run converted', () => jobs(out).find((j) => j.id === run.job_ids[0] && j.status !== 'queued' && j.status !== 'running'), 60_000, d)
    assert.equal(jobs(out).find((j) => j.id === run.job_ids[0])!.status, 'succeeded')
    assert.equal(jobs(out).find((j) => j.id === heldId)!.status, 'queued', 'the run without the override still waits for its window')
    const shown = await call(port, 'GET', '/api/v1/schedules/closed')
    assert.equal(shown.status, 200)
    assert.deepEqual((shown.body.runs as Array<{job_ids: string[]}>).map((r) => r.job_ids), [run.job_ids, [heldId]])
    assert.equal((shown.body.schedule as {run_count: number}).run_count, 2)
    const showText = await runCli(['schedule', 'show', 'closed', ...url])
    assert.match(showText.stdout, /queued\s+\S+.*\(override_window\)/)

    const enabled = await runCli(['schedule', 'enable', 'wave-1', ...url, '--json'])
    assert.equal(enabled.code, 0, enabled.stderr)
    assert.deepEqual([(enabled.json as {schedule: {enabled: boolean}}).schedule.enabled, (enabled.json as {schedule: {next_run: string}}).schedule.next_run], [true, nextBerlin('0 22 4 12 *')])

    const patched = await call(port, 'PATCH', '/api/v1/schedules/wave-1', {cron: '0 23 4 12 *', enabled: true})
    assert.equal(patched.status, 200)
    assert.equal(((await call(port, 'GET', '/api/v1/schedules/wave-1')).body.schedule as {next_run: string}).next_run, nextBerlin('0 23 4 12 *'))
    const deleted = await runCli(['schedule', 'delete', 'wave-1', ...url, '--json'])
    assert.equal(deleted.code, 0, deleted.stderr)
    assert.equal((await call(port, 'GET', '/api/v1/schedules/wave-1')).status, 404)
    const gone = await runCli(['schedule', 'trigger', 'wave-1', ...url, '--json'])
    assert.notEqual(gone.code, 0)
  })

  it('SIGHUP syncs the file\'s schedules into the store (added, updated, removed) without a restart', async () => {
    const input = '../vms/legacy/legacy.vhdx'
    const {config, out} = writeConfig(suite.dir, 'reload', {schedules: [{cron: '0 3 * * *', id: 'a', job_template: {input}, timezone: 'UTC'}, {cron: '0 4 * * *', id: 'b', job_template: {input}, timezone: 'UTC'}]})
    const d = await startDaemon(['--config', config], out)
    suite.daemons.push(d)
    // SIGHUP before daemon:start is ignored (and said so): wait for both.
    await until('synced and started', () => d.stderr().includes('schedules:synced added=a,b') && d.stderr().includes('daemon:start'), 10_000, d)
    writeConfig(suite.dir, 'reload', {schedules: [{cron: '30 5 * * *', id: 'a', job_template: {input}, timezone: 'UTC'}, {cron: '0 6 * * *', id: 'c', job_template: {input}, timezone: 'UTC'}]})
    d.child.kill('SIGHUP')
    await until('reloaded', () => /schedules:synced added=c removed=b updated=a/.test(d.stderr()), 10_000, d)
    const store = new Database(join(out, '.daemon', 'jobs.db'), {readonly: true})
    try {
      const rows = store.prepare('SELECT id, cron, source FROM schedules ORDER BY id').all()
      assert.deepEqual(rows, [{cron: '30 5 * * *', id: 'a', source: 'config'}, {cron: '0 6 * * *', id: 'c', source: 'config'}])
    } finally {
      store.close()
    }
    assert.match(d.stderr(), /daemon:reloaded changed=schedules/)
  })
})
