import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {Config} from '@oclif/core'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import {Daemon} from '../../src/daemon/daemon.js'
import {loadRegistry} from '../../src/stages/load-registry.js'
import {FakeClock} from '../helpers/fake-clock.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {until} from '../helpers/daemon-process.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * The JobService inside a real daemon (in this process: nothing outside the daemon reaches it before the
 * API): submitted jobs run through the same pump as dropped ones, a not-before time holds a job with its
 * reason, and cancelling a running job aborts it and ends it cancelled (not re-queued).
 */
describe('daemon: the job service inside a running daemon', function () {
  this.timeout(120_000)
  let temp: ReturnType<typeof makeTempDir>
  let daemon: Daemon | undefined
  let umask: number
  before(() => {
    temp = makeTempDir('h2k-daemon-service-')
    umask = process.umask()
  })
  afterEach(async () => {
    await daemon?.stop('test over')
    daemon = undefined
  })
  after(() => {
    process.umask(umask)
    temp.cleanup()
  })

  async function start(name: string, clock?: FakeClock): Promise<{daemon: Daemon; inputs: string; out: string}> {
    const base = join(temp.dir, name)
    const inputs = join(base, 'inputs')
    mkdirSync(inputs, {recursive: true})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: queue\noutput_dir: out\nallowed_input_dirs: [inputs]\nfix: false\nlog_level: error\n`)
    const cfg = await loadDaemonConfig({config, 'stability-interval': 100})
    const registry = await loadRegistry(await Config.load(ROOT))
    daemon = new Daemon(cfg, registry, clock ? {clock} : {})
    await daemon.start()
    return {daemon, inputs, out: cfg.outputDir}
  }

  it('a submitted job runs (output where the daemon puts outputs); one with a not-before time waits, saying why, then runs when the daemon\'s clock gets there', async () => {
    const clock = new FakeClock(Date.parse('2026-12-02T12:00:00Z'))
    const {daemon: d, inputs, out} = await start('submit', clock)
    const disk = join(inputs, 'vm1.raw')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', disk, '1M'])
    const [job] = await d.jobService.submit({input: disk, output_dir: '/tmp/elsewhere'}, {origin: 'api', requestId: 'r-1'})
    const done = await until('succeeded', () => d.jobService.show(job!.id)?.job.status === 'succeeded' && d.jobService.show(job!.id), 30_000)
    assert.ok(done.job.output_path.startsWith(out), done.job.output_path)
    assert.ok(existsSync(join(done.job.output_path, 'vm1.qcow2')))
    assert.deepEqual(done.attempts.map((a) => a.outcome), ['succeeded'])
    const later = clock.now() + 3_600_000
    const [held] = await d.jobService.submit({input: disk, name: 'later'}, {notBefore: later, origin: 'schedule', scheduleId: 's1', waitReason: 'outside the window 22:00-06:00'})
    const waiting = await until('held with its reason', () => {
      const job = d.jobService.show(held!.id)?.job
      return job?.wait_reason ? job : undefined
    }, 5000)
    assert.equal(waiting.status, 'queued')
    assert.equal(waiting.wait_reason, 'outside the window 22:00-06:00')
    assert.equal(waiting.not_before, later)
    // A minute before its time, nothing; at its time (the pump's wake timer on the daemon's clock), it runs.
    await clock.advanceTo(later - 60_000, async () => {})
    await new Promise((r) => setTimeout(r, 200))
    assert.deepEqual([d.jobService.show(held!.id)!.job.status, d.jobService.show(held!.id)!.attempts], ['queued', []])
    await clock.advanceTo(later + 100, async () => {})
    const ran = await until('ran after not_before', () => d.jobService.show(held!.id)?.job.status === 'succeeded' && d.jobService.show(held!.id)!, 30_000)
    assert.equal(ran.job.wait_reason, null)
  })

  it('cancelling a running job aborts it: cancelled (H2K_CANCELLED), its attempt cancelled, not re-queued, its dependent skipped', async () => {
    const {daemon: d, inputs} = await start('cancel')
    const big = join(inputs, 'big.raw')
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=192', 'status=none'])
    const small = join(inputs, 'small.raw')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', small, '1M'])
    const [parent, child] = await d.jobService.submit({compress: true, compression: 'zlib', jobs: [{input: big, name: 'big'}, {depends_on: ['big'], input: small, name: 'small'}]}, {origin: 'api'})
    await until('running', () => d.jobService.show(parent!.id)?.job.status === 'running', 30_000)
    assert.throws(() => d.jobService.cancel(child!.id + 'x', 'no such'), /No job/)
    d.jobService.cancel(parent!.id, 'operator said so')
    const ended = await until('cancelled', () => d.jobService.show(parent!.id)?.job.status === 'cancelled' && d.jobService.show(parent!.id)!, 30_000)
    assert.equal((ended.error as {code: string}).code, 'H2K_CANCELLED')
    assert.deepEqual(ended.attempts.map((a) => a.outcome), ['cancelled'])
    assert.equal(d.jobService.show(child!.id)!.job.status, 'skipped')
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(d.jobService.show(parent!.id)!.job.status, 'cancelled', 'not re-queued')
    assert.ok(!existsSync(ended.job.output_path), 'nothing of the cancelled attempt is left')
  })
})
