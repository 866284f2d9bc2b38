import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import Database from 'better-sqlite3'

import {jobs, startDaemon, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {linkTestPlugins, userEnv} from '../helpers/user-plugins.js'

const MINUTE = 60_000

/** "HH:MM" of an instant in UTC. */
const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 16)

function historyDetails(out: string, id: string): string[] {
  const db = new Database(join(out, '.daemon', 'jobs.db'), {readonly: true})
  try {
    return (db.prepare('SELECT to_status, detail FROM job_history WHERE job_id = ? ORDER BY id').all(id) as Array<{to_status: string; detail: string | null}>).map((r) => `${r.to_status}: ${r.detail ?? ''}`)
  } finally {
    db.close()
  }
}

/**
 * Time windows in a real daemon process. Windows have minute resolution, so the test picks the next minute
 * boundary B at least 15 s ahead and builds its windows around it: one opening at B (its jobs wait `queued`
 * until then, then run without a new drop), one closing at B with window_end: cancel (its job, held running
 * by the hold-verifier test plugin, is cancelled at B). The wait is B minus now: 15 to 75 s of wall time.
 */
describe('daemon: time windows', function () {
  this.timeout(180_000)
  const suite = daemonSuite('h2k-windows-')

  it('a job outside its window waits queued with the reason and runs when it opens; window_end: cancel ends a running job at the close; override_window from a dropped file is ignored', async () => {
    const root = join(suite.dir, 'flow')
    const out = join(suite.dir, 'out')
    const inputs = join(suite.dir, 'inputs')
    const slow = join(inputs, 'slow')
    const inbox = join(root, 'to_be_processed')
    for (const d of [inbox, slow]) mkdirSync(d, {recursive: true})
    const config = join(suite.dir, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nworkflow_mode: true\nworkflow_dir: ${root}\noutput_dir: ${out}\nallowed_input_dirs: [${inputs}]\nmax_concurrent_jobs: 3\nfix: false\n`)
    for (const name of ['later', 'forced']) makePatternedRaw(join(inputs, `${name}.raw`), 1024 * 1024, [{length: 4096, offset: 0, pattern: 0x11}])
    makePatternedRaw(join(slow, 'closing.raw'), 1024 * 1024, [{length: 4096, offset: 0, pattern: 0x22}])
    // The hold verifier keeps `closing` running while slow/hold exists (at most 120 s); only a cancel ends it sooner.
    writeFileSync(join(slow, 'hold'), '')
    const env = userEnv(join(suite.dir, 'user'))
    await linkTestPlugins(env, 'hold-verifier')
    const d = await startDaemon(['--config', config], out, undefined, {env})
    suite.daemons.push(d)

    let boundary = Math.ceil(Date.now() / MINUTE) * MINUTE
    if (boundary - Date.now() < 15_000) boundary += MINUTE
    const opensAtB = {hours: `${clock(boundary)}-${clock(boundary + 60 * MINUTE)}`, timezone: 'UTC'}
    const closesAtB = {hours: `${clock(boundary - 60 * MINUTE)}-${clock(boundary)}`, timezone: 'UTC'}
    writeFileSync(join(inbox, 'wave.json'), JSON.stringify({jobs: [
      {input: join(inputs, 'later.raw'), name: 'later', window: opensAtB},
      {input: join(inputs, 'forced.raw'), name: 'forced', override_window: true, window: opensAtB},
      {input: join(slow, 'closing.raw'), name: 'closing', window: closesAtB, window_end: 'cancel'},
    ]}))

    const byName = () => Object.fromEntries(jobs(out).map((j) => [j.name, j]))
    await until('closing running, later and forced waiting', () => {
      const now = byName()
      return now.closing?.status === 'running' && now.later?.status === 'queued' && now.forced?.status === 'queued' && /outside window/.test(String((now.forced as {wait_reason?: string}).wait_reason))
    }, 30_000, d)
    assert.ok(Date.now() < boundary, 'the checks before B ran before B')

    // ctl jobs shows why they wait, and until when (the window's next opening, B).
    const listed = await runCli(['ctl', 'jobs', '--output-dir', out, '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    const waiting = (listed.json.jobs as Array<{name: string; status: string; not_before: number | null; wait_reason: string | null}>).filter((j) => j.name !== 'closing')
    const reason = `outside window ${opensAtB.hours} UTC, opens ${new Date(boundary).toISOString()}`
    assert.deepEqual(waiting.map((j) => [j.name, j.status, j.not_before, j.wait_reason]).sort(), [['forced', 'queued', boundary, reason], ['later', 'queued', boundary, reason]])
    const table = await runCli(['ctl', 'jobs', '--output-dir', out])
    assert.ok(table.stdout.includes(reason) && !table.stdout.includes(`${reason} until`), table.stdout)
    // override_window is an emergency switch for the API and schedule triggers, never for whoever can drop a file.
    assert.match(d.log(), /job:override-ignored.*override_window ignored: a dropped job file may not override its window/)

    await until('every job ended', () => Object.values(byName()).every((j) => ['succeeded', 'cancelled', 'failed'].includes(j.status)), boundary - Date.now() + 60_000, d)
    const ended = byName()
    assert.deepEqual([ended.later!.status, ended.forced!.status, ended.closing!.status], ['succeeded', 'succeeded', 'cancelled'])
    // They started when the window opened (not before), without another drop to wake the daemon.
    for (const name of ['later', 'forced']) assert.ok(Date.parse(ended[name]!.started_at!) >= boundary, `${name} started ${ended[name]!.started_at} before ${new Date(boundary).toISOString()}`)
    // The running job was cancelled when its window closed, not before, not much after.
    const cancelledAt = Date.parse(ended.closing!.completed_at!)
    assert.ok(cancelledAt >= boundary && cancelledAt < boundary + 15_000, `cancelled at ${ended.closing!.completed_at}`)
    assert.ok(historyDetails(out, ended.closing!.id).some((h) => h.startsWith('cancelled:') && h.includes('window closed')), historyDetails(out, ended.closing!.id).join('\n'))
    assert.match(d.log(), /job:window-closed/)
  })
})
