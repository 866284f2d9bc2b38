import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {history, jobOf, jobs, killAll, type RunningDaemon, startDaemon, today, until} from '../helpers/daemon-process.js'
import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** The daemon through real processes on temp directories with small real disks. */
describe('daemon: watch layout, job store, ctl', function () {
  this.timeout(90_000)
  let dir: string
  let cleanup: () => void
  let raw: string
  const daemons: RunningDaemon[] = []
  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-daemon-'))
    raw = makePatternedRaw(join(dir, 'source.raw'))
  })
  afterEach(() => killAll(daemons))
  after(() => cleanup())

  it('picks up files present at start-up and dropped later; outputs by date, inputs archived, history and stats.json', async () => {
    const watch = join(dir, 't1', 'queue')
    const out = join(dir, 't1', 'out')
    execFileSync('mkdir', ['-p', watch])
    execFileSync('cp', ['--sparse=always', raw, join(watch, 'alpha.raw')])
    const d = await startDaemon(['--watch-dir', watch, '--output-dir', out])
    daemons.push(d)
    await until('alpha done', () => jobOf(out, 'alpha.raw', 'succeeded'), 30_000, d)
    convertFixture(raw, join(dir, 't1', 'beta.qcow2'), 'qcow2')
    execFileSync('mv', [join(dir, 't1', 'beta.qcow2'), join(watch, 'beta.qcow2')])
    const beta = await until('beta done', () => jobOf(out, 'beta.qcow2', 'succeeded'), 30_000, d)
    assert.ok(sameContent(join(out, today(), 'alpha', 'alpha.qcow2'), 'qcow2', raw, 'raw'))
    assert.ok(sameContent(join(out, today(), 'beta', 'beta.qcow2'), 'qcow2', raw, 'raw'))
    assert.equal(beta.output_path, join(out, today(), 'beta'))
    // Settled a moment after the store says succeeded.
    await until('both settled into .processed/', () => existsSync(join(watch, '.processed', today(), 'beta.qcow2')), 30_000, d)
    assert.deepEqual(readdirSync(join(watch, '.processed', today())).sort(), ['alpha.raw', 'beta.qcow2'])
    assert.deepEqual(readdirSync(watch).filter((n) => !n.startsWith('.')), [])
    assert.deepEqual(history(out, beta.id), ['queued', 'running', 'succeeded'])
    // The store records the success just before the line is logged; the pipe may deliver it a moment later.
    await until('the job:succeeded line', () => /INFO job:succeeded file=beta\.qcow2 job=\w+ /.test(d.stderr()), 5000, d)
    const stats = await until('stats.json', () => {
      const s = JSON.parse(readFileSync(join(out, '.daemon', 'stats.json'), 'utf8')) as Record<string, any>
      return s.total_processed === 2 ? s : undefined
    }, 10_000, d)
    for (const key of ['daemon_start_time', 'uptime_hours', 'total_processed', 'total_failed', 'total_retried', 'success_rate', 'average_processing_time_seconds', 'current_queue_depth', 'by_file_type', 'current_jobs']) assert.ok(key in stats, key)
    assert.equal(stats.by_file_type.raw.processed, 1)
    assert.equal(stats.success_rate, 100)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    assert.ok(!existsSync(join(out, '.daemon', 'control.sock')))
  })

  it('does not claim a file while it is still being written, then converts it complete', async () => {
    const watch = join(dir, 't2', 'queue')
    const out = join(dir, 't2', 'out')
    execFileSync('mkdir', ['-p', watch])
    const d = await startDaemon(['--watch-dir', watch, '--output-dir', out])
    daemons.push(d)
    const small = makePatternedRaw(join(dir, 't2', 'slow-source.raw'), 4 * 1024 * 1024, [
      {length: 4096, offset: 0, pattern: 0x11},
      {length: 4096, offset: 4 * 1024 * 1024 - 4096, pattern: 0x66},
    ])
    const content = readFileSync(small)
    const target = join(watch, 'slow.raw')
    const fd = openSync(target, 'w')
    const chunk = content.length / 16
    // 16 chunks 120 ms apart (~2 s): with checks every 100 ms the file never looks stable meanwhile.
    for (let i = 0; i < 16; i++) {
      writeSync(fd, content, i * chunk, chunk)
      await sleep(120)
      assert.ok(existsSync(target), `claimed while still growing (chunk ${i})`)
      assert.equal(jobOf(out, 'slow.raw'), undefined)
    }
    closeSync(fd)
    const job = await until('slow done', () => jobOf(out, 'slow.raw', 'succeeded'), 30_000, d)
    assert.ok(sameContent(join(job.output_path, 'slow.qcow2'), 'qcow2', small, 'raw'))
  })

  it('a permanent failure is not retried and gets its error file', async () => {
    const base = join(dir, 't3')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', watch])
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: queue\noutput_dir: out\nretry_policy:\n  enabled: true\n  max_retries: 3\n  retry_delay: 0.1\n  backoff_multiplier: 2\nverbose: 1\n`)
    writeFileSync(join(watch, 'empty.vmdk'), '')
    const d = await startDaemon(['--config', config, '--output-dir', out])
    daemons.push(d)
    const job = await until('empty failed', () => jobOf(out, 'empty.vmdk', 'failed'), 30_000, d)
    assert.equal(job.attempts, 1)
    assert.deepEqual(history(out, job.id), ['queued', 'running', 'failed'])
    // The store records the failure just before the claim settles: its error file first, then its files.
    await until('empty.vmdk settled into .errors/', () => existsSync(join(watch, '.errors', 'empty.vmdk')), 10_000, d)
    const record = JSON.parse(readFileSync(join(watch, '.errors', 'empty.vmdk.error.json'), 'utf8')) as Record<string, any>
    for (const key of ['filename', 'filepath', 'file_size_mb', 'timestamp', 'error', 'error_code', 'phase', 'suggestion', 'system_info', 'retry_info']) assert.ok(key in record, key)
    assert.equal(record.filename, 'empty.vmdk')
    assert.equal(record.error_code, 'H2K_INPUT_EMPTY')
    assert.equal(record.phase, 'load')
    assert.equal(record.retry_info.attempts, 1)
    assert.equal(record.retry_info.retry_count, 0)
    assert.equal(record.retry_info.next_retry_at, null)
    assert.equal(record.retry_info.reason_not_retried, 'permanent error')
    assert.ok(record.system_info.node_version)
    assert.ok(existsSync(join(watch, '.errors', 'empty.vmdk')), 'the input is kept in .errors/')
    assert.ok(!existsSync(job.output_path), 'no output directory is left for a failed job')
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })

  it('ctl status, pause, resume and stop; the control socket is mode 0600; clear error when no daemon runs', async () => {
    const watch = join(dir, 't4', 'queue')
    const out = join(dir, 't4', 'out')
    execFileSync('mkdir', ['-p', watch])
    const missing = await runCli(['ctl', 'status', '--output-dir', join(dir, 't4', 'nowhere'), '--json'])
    assert.equal(missing.code, 12)
    assert.equal(missing.json.error.code, 'H2K_DAEMON_NOT_RUNNING')
    assert.match(missing.json.error.message, /socket not found .* wrong --output-dir\?/)

    const d = await startDaemon(['--watch-dir', watch, '--output-dir', out, '--max-concurrent-jobs', '2'])
    daemons.push(d)
    assert.equal(statSync(join(out, '.daemon', 'control.sock')).mode & 0o777, 0o600)
    const status = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(status.code, 0, status.stderr)
    assert.equal(status.json.state, 'RUNNING')
    assert.equal(status.json.pid, d.child.pid)
    const human = await runCli(['ctl', 'status', '--output-dir', out])
    assert.match(human.stdout, /^Status: RUNNING\n/, 'the seed\'s Status line first')
    assert.match(human.stdout, /^state +RUNNING$/m)

    const paused = await runCli(['ctl', 'pause', '--output-dir', out, '--json'])
    assert.equal(paused.json.state, 'PAUSED')
    execFileSync('cp', ['--sparse=always', raw, join(watch, 'gamma.raw')])
    await until('gamma claimed', () => jobOf(out, 'gamma.raw'), 10_000, d)
    await sleep(500)
    assert.equal(jobOf(out, 'gamma.raw')!.status, 'queued', 'no job starts while paused')
    assert.equal((await runCli(['ctl', 'status', '--output-dir', out, '--json'])).json.queued, 1)

    const resumed = await runCli(['ctl', 'resume', '--output-dir', out, '--json'])
    assert.equal(resumed.json.state, 'RUNNING')
    await until('gamma done', () => jobOf(out, 'gamma.raw', 'succeeded'), 30_000, d)
    const stats = await runCli(['ctl', 'stats', '--output-dir', out, '--json'])
    assert.equal(stats.json.stats.total_processed, 1)

    const listed = await runCli(['ctl', 'jobs', '--output-dir', out, '--json'])
    assert.equal(listed.json.jobs.length, 1)
    const one = await runCli(['ctl', 'job', listed.json.jobs[0].id.slice(0, 6), '--output-dir', out, '--json'])
    assert.deepEqual(one.json.history.map((h: {to_status: string}) => h.to_status), ['queued', 'running', 'succeeded'])

    const stopped = await runCli(['ctl', 'stop', '--output-dir', out, '--json'])
    assert.equal(stopped.json.state, 'STOPPING')
    assert.equal(await d.exited, 0)
    const after = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(after.json.error.code, 'H2K_DAEMON_NOT_RUNNING')
  })

  it('dedup: a file converted before is skipped; a file that failed is processed again; errors list/retry', async () => {
    const base = join(dir, 't6')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', watch])
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\nenable_deduplication: true\n')
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    execFileSync('cp', ['--sparse=always', raw, join(watch, 'delta.raw')])
    await until('delta done', () => jobOf(out, 'delta.raw', 'succeeded'), 30_000, d)
    execFileSync('cp', ['--sparse=always', raw, join(watch, 'delta.raw')])
    await until('delta duplicate', () => jobOf(out, 'delta.raw', 'duplicate'), 30_000, d)
    // The store says duplicate a moment before the file has moved.
    await until('delta in .duplicates', () => existsSync(join(watch, '.duplicates', today(), 'delta.raw')), 10_000, d)
    assert.deepEqual(readdirSync(join(watch, '.duplicates', today())), ['delta.raw'])
    // The default key is the content: a different disk with the same name and size is converted, not skipped (#9 finding 7).
    const forged = join(base, 'delta.raw')
    execFileSync('cp', ['--sparse=always', raw, forged])
    execFileSync('dd', ['if=/dev/urandom', `of=${forged}`, 'bs=4096', 'count=1', 'seek=1', 'conv=notrunc', 'status=none'])
    execFileSync('mv', [forged, join(watch, 'delta.raw')])
    await until('the same-name same-size different disk converted', () => jobs(out).filter((j) => j.source_path === 'delta.raw' && j.status === 'succeeded').length === 2, 30_000, d)
    assert.deepEqual(readdirSync(join(watch, '.duplicates', today())), ['delta.raw'], 'only the identical copy was a duplicate')
    writeFileSync(join(watch, 'empty.vmdk'), '')
    await until('empty failed', () => jobOf(out, 'empty.vmdk', 'failed'), 30_000, d)
    await until('empty.vmdk settled into .errors/', () => existsSync(join(watch, '.errors', 'empty.vmdk')), 10_000, d)
    const listed = await runCli(['errors', 'list', '--watch-dir', watch, '--json'])
    assert.deepEqual(listed.json.errors.map((e: {filename: string}) => e.filename), ['empty.vmdk'])
    const retried = await runCli(['errors', 'retry', 'empty.vmdk', '--watch-dir', watch, '--json'])
    assert.equal(retried.code, 0, retried.stderr)
    await until('empty failed twice', () => jobs(out).filter((j) => j.source_path === 'empty.vmdk' && j.status === 'failed').length === 2, 30_000, d)
    const dedup = await runCli(['dedup', 'list', '--output-dir', out, '--json'])
    assert.deepEqual(dedup.json.files.map((f: {filename: string}) => f.filename), ['delta.raw', 'delta.raw'])
    assert.ok(dedup.json.files.every((f: {file_hash: string | null}) => /^[0-9a-f]{64}$/.test(String(f.file_hash))), 'recorded by their SHA-256')
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })

  it('a retryable failure is retried with backoff (persisted in the store) and then succeeds', async () => {
    const base = join(dir, 't7')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', watch, out])
    // A file where the day's output directory should be: writing the output fails (H2K_OUTPUT_FAILED, retryable).
    const blocker = join(out, today())
    writeFileSync(blocker, 'in the way')
    const config = join(base, 'daemon.yaml')
    // jitter: none: exactly retry_delay before the first retry (full jitter, the default, draws it from [0, 500 ms]).
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\nretry_policy:\n  max_retries: 3\n  retry_delay: 0.5\n  backoff_multiplier: 2\n  jitter: none\n')
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    execFileSync('cp', ['--sparse=always', raw, join(watch, 'eps.raw')])
    const waiting = await until('eps waiting for a retry', () => jobOf(out, 'eps.raw', 'retry_wait'), 30_000, d)
    assert.equal(waiting.attempts, 1)
    assert.equal(JSON.parse(waiting.error!).code, 'H2K_OUTPUT_FAILED')
    execFileSync('rm', [blocker])
    const done = await until('eps done', () => jobOf(out, 'eps.raw', 'succeeded'), 30_000, d)
    assert.ok(done.attempts >= 2)
    assert.deepEqual(history(out, done.id).slice(0, 3), ['queued', 'running', 'retry_wait'])
    assert.equal(history(out, done.id).at(-1), 'succeeded')
    assert.match(d.stderr(), /WARN job:retry .*delay_ms=500 /)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })

  it('ctl drain: the running job finishes, no new one starts, then the daemon exits 0', async () => {
    const base = join(dir, 't8')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', watch])
    const big = join(base, 'zeta.raw')
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=256', 'status=none'])
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\ncompress: true\nmax_concurrent_jobs: 1\n')
    execFileSync('mv', [big, join(watch, 'zeta.raw')])
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    await until('zeta running', () => jobOf(out, 'zeta.raw', 'running'), 30_000, d, 10)
    const drained = await runCli(['ctl', 'drain', '--config', config, '--json'])
    assert.equal(drained.json.state, 'DRAINING', drained.stderr)
    execFileSync('cp', ['--sparse=always', raw, join(watch, 'eta.raw')])
    assert.equal(await d.exited, 0)
    assert.equal(jobOf(out, 'zeta.raw')!.status, 'succeeded')
    assert.notEqual(jobOf(out, 'eta.raw')?.status, 'running')
    assert.equal(jobs(out).filter((j) => j.status === 'succeeded').length, 1)
  })

  it('kill -9 during a conversion, then restart: the job is re-queued and completes exactly once', async () => {
    const base = join(dir, 't5')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', watch])
    // Incompressible data and zstd compression make the conversion take long enough to be killed in.
    const big = join(base, 'big.raw')
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=384', 'status=none'])
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\ncompress: true\n')
    execFileSync('mv', [big, join(watch, 'big.raw')])
    const first = await startDaemon(['--config', config], out)
    daemons.push(first)
    const running = await until('big running', () => jobOf(out, 'big.raw', 'running'), 30_000, first, 10)
    await until('a .part output', () => existsSync(running.output_path) && readdirSync(running.output_path).some((n) => n.endsWith('.part')), 30_000, first, 10)
    first.child.kill('SIGKILL')
    await first.exited
    assert.equal(jobOf(out, 'big.raw')!.status, 'running')
    assert.ok(existsSync(join(watch, '.processing', running.id, 'big.raw')), 'the input is not lost')

    const second = await startDaemon(['--config', config], out)
    daemons.push(second)
    const done = await until('big done', () => jobOf(out, 'big.raw', 'succeeded'), 60_000, second)
    assert.equal(done.id, running.id)
    assert.equal(jobs(out).length, 1)
    assert.deepEqual(history(out, done.id), ['queued', 'running', 'queued', 'running', 'succeeded'])
    assert.deepEqual(readdirSync(done.output_path).sort(), ['big.qcow2', 'big.report.json'])
    // The store says succeeded before the claim is settled: the input reaches .processed/ a moment later.
    const processed = join(watch, '.processed', today(), 'big.raw')
    await until('big.raw settled into .processed/', () => existsSync(processed), 30_000, second)
    assert.ok(sameContent(join(done.output_path, 'big.qcow2'), 'qcow2', processed, 'raw'), 'the output holds the input')
    assert.match(second.stderr(), /WARN job:recovered file=big\.raw/)
    second.child.kill('SIGTERM')
    assert.equal(await second.exited, 0)
  })
})
