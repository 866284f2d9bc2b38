import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {Config} from '@oclif/core'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import {Daemon} from '../../src/daemon/daemon.js'
import {loadRegistry} from '../../src/stages/load-registry.js'
import type {StageRegistry} from '../../src/stages/stage-registry.js'
import {jobs, until} from '../helpers/daemon-process.js'
import {FakeClock} from '../helpers/fake-clock.js'
import {historyDetails} from '../helpers/job-store-rows.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {linkTestPlugins, userEnv} from '../helpers/user-plugins.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const MINUTE = 60_000

/** The stage registry with the user plugins linked under `env` (HOME/XDG_*): oclif reads them at load. */
async function registryWith(env: NodeJS.ProcessEnv): Promise<StageRegistry> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
  Object.assign(process.env, env)
  try {
    return await loadRegistry(await Config.load(ROOT))
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

/** Let what a fired timer started (a pump, a cancel) run before the next timer. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

/**
 * Time windows in a real daemon (in this process, its one clock a fake one: nothing waits for wall time) on
 * real disks. The clock reads B − 1 min, B = 22:00 UTC: one window opens at B (its jobs wait `queued`, saying
 * why, even while the one worker is busy), one closes at B with window_end: cancel (its job, held running by
 * the hold-verifier test plugin, is cancelled at B). Advancing the clock to B starts the waiting jobs
 * without a new drop and cancels the running one.
 */
describe('daemon: time windows', function () {
  this.timeout(120_000)
  let temp: ReturnType<typeof makeTempDir>
  let daemon: Daemon | undefined
  let umask: number
  before(() => {
    temp = makeTempDir('h2k-windows-')
    umask = process.umask()
  })
  after(async () => {
    await daemon?.stop('test over')
    process.umask(umask)
    temp.cleanup()
  })

  it('a job outside its window waits queued with the reason (the pool full) and runs when it opens; window_end: cancel ends a running job at the close; override_window from a dropped file is ignored', async () => {
    const root = join(temp.dir, 'flow')
    const out = join(temp.dir, 'out')
    const inputs = join(temp.dir, 'inputs')
    const slow = join(inputs, 'slow')
    const inbox = join(root, 'to_be_processed')
    const logFile = join(temp.dir, 'log', 'daemon.log')
    for (const d of [inbox, slow]) mkdirSync(d, {recursive: true})
    const config = join(temp.dir, 'daemon.yaml')
    // One worker: `closing` fills the pool, and the jobs behind it must still say why they wait.
    writeFileSync(config, `command: daemon\nworkflow_mode: true\nworkflow_dir: ${root}\noutput_dir: ${out}\nallowed_input_dirs: [${inputs}]\nmax_concurrent_jobs: 1\nfix: false\nlog_file: ${logFile}\n`)
    for (const name of ['later', 'forced']) makePatternedRaw(join(inputs, `${name}.raw`), 1024 * 1024, [{length: 4096, offset: 0, pattern: 0x11}])
    makePatternedRaw(join(slow, 'closing.raw'), 1024 * 1024, [{length: 4096, offset: 0, pattern: 0x22}])
    // The hold verifier keeps `closing` running while slow/hold exists (at most 120 s); only a cancel ends it sooner.
    writeFileSync(join(slow, 'hold'), '')
    const env = userEnv(join(temp.dir, 'user'))
    await linkTestPlugins(env, 'hold-verifier')
    const registry = await registryWith(env)

    const boundary = Date.parse('2026-12-02T22:00:00Z')
    const clock = new FakeClock(boundary - MINUTE)
    daemon = new Daemon(await loadDaemonConfig({config, 'stability-interval': 100}), registry, {clock})
    await daemon.start()
    const log = () => readFileSync(logFile, 'utf8')

    const opensAtB = {hours: '22:00-23:00', timezone: 'UTC'}
    const closesAtB = {hours: '21:00-22:00', timezone: 'UTC'}
    writeFileSync(join(inbox, 'wave.json'), JSON.stringify({jobs: [
      {input: join(slow, 'closing.raw'), name: 'closing', window: closesAtB, window_end: 'cancel'},
      {input: join(inputs, 'later.raw'), name: 'later', window: opensAtB},
      {input: join(inputs, 'forced.raw'), name: 'forced', override_window: true, window: opensAtB},
    ]}))

    const byName = () => Object.fromEntries(jobs(out).map((j) => [j.name, j as typeof j & {wait_reason: string | null; not_before: number | null}]))
    await until('closing running, later and forced waiting with their reason', () => {
      const now = byName()
      return now.closing?.status === 'running' && [now.later, now.forced].every((j) => j?.status === 'queued' && /outside window/.test(String(j.wait_reason)))
    }, 30_000)

    // ctl jobs shows why they wait, and until when (the window's next opening, B).
    const listed = await runCli(['ctl', 'jobs', '--output-dir', out, '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    const waiting = (listed.json.jobs as Array<{name: string; status: string; not_before: number | null; wait_reason: string | null}>).filter((j) => j.name !== 'closing')
    const reason = `outside window 22:00-23:00 UTC, opens ${new Date(boundary).toISOString()}`
    assert.deepEqual(waiting.map((j) => [j.name, j.status, j.not_before, j.wait_reason]).sort(), [['forced', 'queued', boundary, reason], ['later', 'queued', boundary, reason]])
    const table = await runCli(['ctl', 'jobs', '--output-dir', out])
    assert.ok(table.stdout.includes(reason) && !table.stdout.includes(`${reason} until`), table.stdout)
    // override_window is an emergency switch for the API and schedule triggers, never for whoever can drop a file.
    assert.match(log(), /job:override-ignored.*override_window ignored: a dropped job file may not override its window/)

    // Submitted over the job service while the one worker is busy: it says why at once, not once a slot frees up.
    const [late] = await daemon.jobService.submit({input: join(inputs, 'later.raw'), name: 'late', window: opensAtB}, {origin: 'api'})
    assert.deepEqual([daemon.jobService.show(late!.id)!.job.not_before, daemon.jobService.show(late!.id)!.job.wait_reason], [boundary, reason])

    // A second before B: nothing moves.
    await clock.advanceTo(boundary - 1000, settle)
    const before = byName()
    assert.deepEqual([before.closing!.status, before.later!.status, before.forced!.status], ['running', 'queued', 'queued'])
    assert.deepEqual(historyDetails(out, before.later!.id).map((h) => h.split(':')[0]), ['queued'])

    // B: the running job's window closes (cancelled), the other window opens: the waiting jobs run, one after the other.
    await clock.advanceTo(boundary + 1000, settle)
    await until('every job ended', () => Object.values(byName()).every((j) => ['succeeded', 'cancelled', 'failed'].includes(j.status)), 60_000)
    const ended = byName()
    assert.deepEqual([ended.later!.status, ended.forced!.status, ended.late!.status, ended.closing!.status], ['succeeded', 'succeeded', 'succeeded', 'cancelled'])
    assert.deepEqual([ended.later!.wait_reason, ended.forced!.wait_reason, ended.late!.wait_reason], [null, null, null])
    assert.ok(historyDetails(out, ended.closing!.id).some((h) => h.startsWith('cancelled:') && h.includes('window closed')), historyDetails(out, ended.closing!.id).join('\n'))
    assert.match(log(), /job:window-closed/)
  })
})
