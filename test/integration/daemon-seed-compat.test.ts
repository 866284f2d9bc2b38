import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {createServer} from 'node:net'
import {join} from 'node:path'

import Database from 'better-sqlite3'

import {jobOf, jobs, startDaemon, today, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {CLI, runCli} from '../helpers/run-cli.js'

const EXAMPLES = new URL('../../examples/ops/', import.meta.url).pathname

/** The seed's jq one-liners, run with the real jq on our files. */
function jq(filter: string, input: string, raw = true): string {
  const result = spawnSync('jq', [...(raw ? ['-r'] : []), filter], {encoding: 'utf8', input})
  assert.equal(result.status, 0, `jq ${filter}: ${result.stderr}`)
  return result.stdout.trim()
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')

/**
 * Compatibility with the seeds (000 enhanced daemon, 001 workflow): stats.json and `ctl stats --json` keys,
 * the seed's jq one-liners and healthcheck thresholds, error files and workflow sidecars, `ctl health`,
 * `ctl backup` of a running daemon, keys accepted but not used yet.
 */
describe('daemon: the seeds\' files, commands and ops tools', function () {
  this.timeout(120_000)
  const suite = daemonSuite('h2k-seed-compat-')
  const {daemons} = suite
  let raw: string
  let bin: string
  before(() => {
    raw = makePatternedRaw(join(suite.dir, 'source.raw'), 4 * 1024 * 1024, [{length: 4096, offset: 0, pattern: 0x11}, {length: 4096, offset: 4 * 1024 * 1024 - 4096, pattern: 0x66}])
    // `hyper2kvm` on PATH for the example scripts: the built CLI.
    bin = join(suite.dir, 'bin')
    mkdirSync(bin)
    writeFileSync(join(bin, 'hyper2kvm'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`)
    chmodSync(join(bin, 'hyper2kvm'), 0o755)
  })

  const script = (name: string, args: string[], env: Record<string, string> = {}) =>
    spawnSync(join(EXAMPLES, name), args, {encoding: 'utf8', env: {...process.env, NO_COLOR: '1', PATH: `${bin}:${process.env.PATH}`, ...env}})

  it('watch: stats.json and ctl stats --json after a success, a failure and a retrying job; jq one-liners, ctl stats/status/health, error file, backup while running', async () => {
    const base = join(suite.dir, 'watch')
    const queue = join(base, 'queue')
    const out = join(base, 'out')
    mkdirSync(queue, {recursive: true})
    mkdirSync(out)
    const config = join(base, 'daemon.yaml')
    writeFileSync(
      config,
      [
        'command: daemon',
        'watch_dir: queue',
        'output_dir: out',
        'verbose: 2',
        'retry_policy:',
        '  enabled: true',
        '  max_retries: 2',
        '  retry_delay: 120',
        '  backoff_multiplier: 2.0',
        // Ours beside the seed's keys: full jitter (the default) could retry within seconds, and the test counts the job as waiting.
        '  jitter: none',
        'vsphere:',
        '  server: vcenter.company.com',
        '  username: automation@vsphere.local',
        '  password: "S3cret-vsphere-pw"',
        '  datacenter: DC1',
        '  insecure: false',
        'webhooks:',
        '  - url: https://hooks.slack.com/services/YOUR/WEBHOOK',
        '    events: [job.completed, job.failed]',
        '    enabled: true',
        'schedules:',
        '  - id: daily-backup',
        '    schedule: "0 2 * * *"',
        '    job_template:',
        '      vm_path: /data/vm/production',
        '      output_path: /backups/daily',
        'database:',
        '  path: /var/lib/hypersdk/jobs.db',
        '',
      ].join('\n'),
    )
    // A file where the day's output directory should be: the first job's output fails (H2K_OUTPUT_FAILED, retryable).
    const blocker = join(out, today())
    writeFileSync(blocker, 'in the way')
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)

    // Keys accepted but not used yet: said once, at start; the plain password warns and is never logged.
    await until('notices', () => d.stderr().includes('config:plain-secret'), 5000, d)
    for (const key of ['vsphere', 'database']) {
      assert.equal(d.stderr().split('\n').filter((l) => l.includes(`WARN config:not-used-yet key=${key} `)).length, 1, `${key} once:\n${d.stderr()}`)
    }
    // The seed's schedule is used: synced into the store; its output_path is ignored, said once.
    assert.ok(!d.stderr().includes('config:not-used-yet key=schedules'), d.stderr())
    assert.equal(d.stderr().split('\n').filter((l) => l.includes('WARN config:schedule ') && l.includes('output_path is ignored')).length, 1, d.stderr())
    assert.match(d.stderr(), /schedules:synced added=daily-backup/)
    // webhooks: are lifecycle webhooks now, delivered by the same engine as notifications.
    assert.ok(!d.stderr().includes('config:not-used-yet key=webhooks'), d.stderr())
    assert.match(d.stderr(), /INFO notify:start .*lifecycle webhook hooks\.slack\.com/)
    assert.ok(!d.stderr().includes('S3cret-vsphere-pw'), 'the vsphere password is never logged')

    writeFileSync(join(queue, 'eps.raw'), readFileSync(raw))
    await until('eps waiting for a retry', () => jobOf(out, 'eps.raw', 'retry_wait'), 30_000, d)
    rmSync(blocker)
    writeFileSync(join(queue, 'good.raw'), readFileSync(raw))
    await until('good succeeded', () => jobOf(out, 'good.raw', 'succeeded'), 30_000, d)

    // Only a success so far: healthy.
    const healthy = await runCli(['ctl', 'health', '--config', config])
    assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr)
    assert.match(healthy.stdout, /^OK: daemon RUNNING, success rate 100% \(1 processed, 0 failed\), 1 queued, 0 running \| success_rate=100%;80:;50:;0;100 /)

    writeFileSync(join(queue, 'bad.vmdk'), 'this is text, not a disk\n')
    // Settled: the error file, then the input moved beside it (the job leaves current_jobs once it has moved).
    await until('bad.vmdk settled', () => existsSync(join(queue, '.errors', 'bad.vmdk.error.json')) && existsSync(join(queue, '.errors', 'bad.vmdk')), 30_000, d)

    // ctl stats --json: the seed's keys and shapes.
    const live = await runCli(['ctl', 'stats', '--config', config, '--json'])
    assert.equal(live.code, 0, live.stderr)
    const s = live.json.stats
    assert.equal(s.total_processed, 1)
    assert.equal(s.total_failed, 1)
    assert.equal(s.total_retried, 1)
    assert.equal(s.success_rate, 50)
    assert.equal(typeof s.average_processing_time_seconds, 'number')
    assert.equal(s.current_queue_depth, 1, 'the job waiting for its retry is queued')
    assert.ok(Date.parse(s.daemon_start_time) <= Date.now())
    assert.equal(typeof s.uptime_hours, 'number')
    assert.deepEqual(Object.keys(s.by_file_type).sort(), ['raw', 'vmdk'])
    assert.deepEqual({...s.by_file_type.raw, avg_time: typeof s.by_file_type.raw.avg_time}, {avg_time: 'number', failed: 0, processed: 1, success_rate: 100})
    assert.deepEqual({...s.by_file_type.vmdk, avg_time: typeof s.by_file_type.vmdk.avg_time}, {avg_time: 'number', failed: 1, processed: 0, success_rate: 0})
    assert.deepEqual(Object.keys(s.current_jobs), ['eps.raw'], 'a map keyed by file name')
    const eps = s.current_jobs['eps.raw']
    assert.equal(eps.filename, 'eps.raw')
    assert.equal(eps.status, 'retrying')
    assert.equal(eps.retry_count, 1)
    assert.ok(Date.parse(eps.next_retry) > Date.now(), eps.next_retry)
    assert.match(eps.error, /\S/)
    assert.equal(eps.file_size_mb, 4)
    for (const gone of ['processed', 'failed', 'retried', 'queue_depth', 'start_time']) assert.ok(!(gone in s), `the renamed duplicate ${gone} is gone`)

    // The seed's one-liners on ctl stats --json …
    assert.equal(jq('.stats.success_rate', live.stdout), '50')
    const retrying = JSON.parse(jq('.stats.current_jobs[] | select(.retry_count > 0)', live.stdout, false)) as Record<string, unknown>
    assert.equal(retrying.filename, 'eps.raw')
    assert.equal(retrying.status, 'retrying')
    // … and on stats.json (written when a job ends).
    const statsFile = join(out, '.daemon', 'stats.json')
    const file = await until('stats.json with the failure', () => {
      const text = readFileSync(statsFile, 'utf8')
      return (JSON.parse(text) as {total_failed: number}).total_failed === 1 ? text : undefined
    }, 10_000, d)
    assert.equal(jq('.success_rate // 100', file), '50')
    assert.match(jq('.average_processing_time_seconds', file), /^\d+(\.\d+)?$/)
    assert.equal(jq('.current_queue_depth', file), '1')
    assert.equal(jq('.total_processed', file), '1')

    // The seed's healthcheck thresholds: 50 % is not below 50 (no CRITICAL) but below 80: WARNING.
    const warning = await runCli(['ctl', 'health', '--config', config])
    assert.equal(warning.code, 1, warning.stdout)
    assert.match(warning.stdout, /^WARNING: success rate below 80%: 50% \(1 processed, 1 failed\)/)
    const critical = await runCli(['ctl', 'health', '--config', config, '--critical-below', '60', '--json'])
    assert.equal(critical.code, 2)
    assert.equal(critical.json.status, 'CRITICAL')
    assert.equal(critical.json.success_rate, 50)
    const viaScript = script('hyper2kvm-healthcheck', [config])
    assert.equal(viaScript.status, 1, viaScript.stdout + viaScript.stderr)
    assert.match(viaScript.stdout, /^WARNING: /)
    const viaStatsFile = script('hyper2kvm-healthcheck', ['--stats-file', statsFile], {CRITICAL_BELOW: '60'})
    assert.equal(viaStatsFile.status, 2, viaStatsFile.stdout + viaStatsFile.stderr)
    assert.equal(viaStatsFile.stdout, 'CRITICAL: Success rate below 60%: 50%\n')

    // Human output: the seed's summary, greppable without emoji (NO_COLOR, not a terminal).
    const human = await runCli(['ctl', 'stats', '--config', config])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /^Daemon Statistics:\n/)
    for (const line of [/^ {2}Uptime: \d+\.\d hours$/m, /^ {2}Processed: 1$/m, /^ {2}Failed: 1$/m, /^ {2}Success Rate: 50\.0%$/m, /^ {2}Avg Processing Time: \d+\.\ds$/m, /^ {2}Queue Depth: 1$/m, /^ {2}Currently Processing: 0$/m, /^ {2}Waiting for Retry: 1$/m, /^ {4}eps\.raw {2}job=\w+ {2}retry 1 {2}next \S+ {2}error: /m]) {
      assert.match(human.stdout, line)
    }
    const status = await runCli(['ctl', 'status', '--config', config])
    assert.match(status.stdout, /^Status: RUNNING\n/)

    // The error file: the seed's fields beside ours.
    const record = JSON.parse(readFileSync(join(queue, '.errors', 'bad.vmdk.error.json'), 'utf8')) as Record<string, any>
    assert.equal(record.error_code, 'H2K_INPUT_UNRECOGNIZED')
    assert.match(record.exception_traceback, /^H2KError: .*\n\s+at /, 'the stack with verbose: 2')
    assert.ok(!record.exception_traceback.includes('this is text'), 'never the refused content')
    assert.equal(typeof record.system_info.disk_space_free_gb, 'number')
    assert.equal(typeof record.system_info.memory_available_gb, 'number')
    assert.ok(record.system_info.memory_available_gb > 0)
    assert.deepEqual({retry_count: record.retry_info.retry_count, max_retries: record.retry_info.max_retries, next_retry_at: record.retry_info.next_retry_at}, {retry_count: 0, max_retries: 2, next_retry_at: null})
    assert.ok(!('stack' in record), 'exception_traceback replaces our stack')

    // Backup while the daemon runs and writes (two more drops are being claimed and converted meanwhile).
    writeFileSync(join(queue, 'more1.raw'), readFileSync(raw))
    writeFileSync(join(queue, 'more2.raw'), readFileSync(raw))
    const backups = join(base, 'backups')
    const [b1, b2] = await Promise.all([runCli(['ctl', 'backup', '--config', config, '--to', backups, '--json']), runCli(['ctl', 'backup', '--output-dir', out, '--to', backups, '--json'])])
    for (const b of [b1, b2]) {
      assert.equal(b.code, 0, b.stdout + b.stderr)
      assert.equal(statSync(b.json.dir).mode & 0o777, 0o700)
      const manifest = JSON.parse(readFileSync(join(b.json.dir, 'backup.json'), 'utf8')) as {files: Array<{name: string; sha256: string}>}
      assert.deepEqual(manifest.files.map((f) => f.name).sort(), ['daemon.yaml', 'jobs.db', 'stats.json'], 'with --output-dir only, the running daemon names its config')
      for (const f of manifest.files) {
        assert.equal(sha256(join(b.json.dir, f.name)), f.sha256, f.name)
        assert.equal(statSync(join(b.json.dir, f.name)).mode & 0o777, 0o600, f.name)
      }
      // Restore: the backed-up jobs.db is a complete database of its own (no -wal beside it).
      assert.deepEqual(readdirSync(b.json.dir).sort(), ['backup.json', 'daemon.yaml', 'jobs.db', 'stats.json'])
      const db = new Database(join(b.json.dir, 'jobs.db'), {readonly: true})
      try {
        const rows = db.prepare('SELECT source_path, status FROM jobs').all() as Array<{source_path: string; status: string}>
        const byFile = Object.fromEntries(rows.map((r) => [r.source_path, r.status]))
        assert.equal(byFile['good.raw'], 'succeeded')
        assert.equal(byFile['bad.vmdk'], 'failed')
        assert.equal(byFile['eps.raw'], 'retry_wait')
        assert.equal(rows.length, b.json.jobs)
      } finally {
        db.close()
      }
    }
    assert.notEqual(b1.json.dir, b2.json.dir, 'two backups in the same second get their own directories')
    // Refused: a symlink, and a directory inside the drop directory (nothing is created there).
    execFileSync('ln', ['-s', backups, join(base, 'link')])
    const viaLink = await runCli(['ctl', 'backup', '--config', config, '--to', join(base, 'link'), '--json'])
    assert.equal(viaLink.json.error.code, 'H2K_UNSAFE_PATH')
    const inside = await runCli(['ctl', 'backup', '--config', config, '--to', join(queue, 'bk'), '--json'])
    assert.equal(inside.json.error.code, 'H2K_UNSAFE_PATH')
    assert.ok(!existsSync(join(queue, 'bk')))
    await until('more converted', () => jobOf(out, 'more1.raw', 'succeeded') && jobOf(out, 'more2.raw', 'succeeded'), 30_000, d)

    assert.equal((await runCli(['ctl', 'stop', '--config', config])).code, 0)
    assert.equal(await d.exited, 0)
    // No daemon: CRITICAL, Status: STOPPED; the backup script still works (from the store alone).
    const down = await runCli(['ctl', 'health', '--config', config])
    assert.equal(down.code, 2)
    assert.match(down.stdout, /^CRITICAL: daemon not running/)
    const stopped = await runCli(['ctl', 'status', '--config', config])
    assert.equal(stopped.code, 12)
    assert.match(stopped.stdout, /^Status: STOPPED$/m)
    const offline = script('hyper2kvm-backup', [config], {BACKUP_DIR: join(base, 'offline')})
    assert.equal(offline.status, 0, offline.stdout + offline.stderr)
    const [only] = readdirSync(join(base, 'offline'))
    const db = new Database(join(base, 'offline', only!, 'jobs.db'), {readonly: true})
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as {n: number}).n, jobs(out).length)
    db.close()
  })

  it('workflow: .meta.json and .error.json carry 001\'s fields; two jobs of one batch on the same disk are keyed apart in current_jobs', async () => {
    const root = join(suite.dir, 'wf')
    const out = join(suite.dir, 'wf-out')
    const inbox = join(root, 'to_be_processed')
    mkdirSync(join(inbox, 'in'), {recursive: true})
    mkdirSync(out)
    const config = join(suite.dir, 'wf.yaml')
    writeFileSync(config, `command: daemon\nworkflow_mode: true\nworkflow_dir: ${root}\noutput_dir: ${out}\nretry_policy:\n  max_retries: 1\n  retry_delay: 120\n  jitter: none\n`)
    // The day's output directory blocked: the batch's jobs fail retryably and wait (H2K_OUTPUT_FAILED).
    const blocker = join(out, today())
    writeFileSync(blocker, 'in the way')
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    writeFileSync(join(inbox, 'in', 'a.raw'), readFileSync(raw))
    writeFileSync(join(inbox, 'pair.yaml'), 'jobs:\n  - input: in/a.raw\n    name: a-qcow2\n  - input: in/a.raw\n    name: a-raw\n    output_format: raw\n')
    const waiting = await until('both batch jobs waiting for a retry', () => {
      const rows = jobs(out).filter((j) => j.status === 'retry_wait')
      return rows.length === 2 ? rows : undefined
    }, 30_000, d)
    const stats = await runCli(['ctl', 'stats', '--output-dir', out, '--json'])
    const current = stats.json.stats.current_jobs as Record<string, {filename: string; job_id: string; status: string}>
    assert.equal(waiting[0]!.source_path, waiting[1]!.source_path, 'one disk, two jobs')
    const name = waiting[0]!.source_path
    assert.deepEqual(Object.keys(current).sort(), waiting.map((j) => `${name}#${j.id}`).sort(), JSON.stringify(current))
    for (const [key, job] of Object.entries(current)) assert.deepEqual([job.filename, `${name}#${job.job_id}`, job.status], [name, key, 'retrying'])
    rmSync(blocker)

    writeFileSync(join(inbox, 'my-vm.raw'), readFileSync(raw))
    writeFileSync(join(inbox, 'my-vm.vmdk'), 'not a disk')
    await until('both settled', () => existsSync(join(root, 'processed', today(), 'my-vm.raw.meta.json')) && existsSync(join(root, 'failed', today(), 'my-vm.vmdk.error.json')), 30_000, d)
    const meta = JSON.parse(readFileSync(join(root, 'processed', today(), 'my-vm.raw.meta.json'), 'utf8')) as Record<string, any>
    const good = jobOf(out, 'my-vm.raw')!
    assert.equal(meta.job_id, good.id)
    assert.equal(meta.original_name, 'my-vm.raw')
    assert.equal(meta.completed_at, good.completed_at)
    assert.equal(meta.status, 'success')
    const error = JSON.parse(readFileSync(join(root, 'failed', today(), 'my-vm.vmdk.error.json'), 'utf8')) as Record<string, any>
    const bad = jobOf(out, 'my-vm.vmdk')!
    assert.equal(error.job_id, bad.id)
    assert.equal(error.original_name, 'my-vm.vmdk')
    assert.equal(error.failed_at, bad.completed_at)
    assert.match(error.error, /my-vm\.vmdk/)
    assert.match(error.exception, /^H2K_INPUT_UNRECOGNIZED: /, 'verbose 1: the error in one line, no stack')
    assert.equal(error.exception_traceback, null)
    assert.equal(error.status, 'failed')
    assert.equal(error.retry_info.next_retry_at, null)
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
  })

  it('ctl health: WARNING (exit 1) when something listens on the control socket but does not answer in time', async () => {
    const out = join(suite.dir, 'hung-out')
    mkdirSync(join(out, '.daemon'), {mode: 0o700, recursive: true})
    const server = createServer(() => {
      // accepts and never answers, like a hung daemon
    })
    await new Promise<void>((resolve) => server.listen(join(out, '.daemon', 'control.sock'), resolve))
    try {
      const hung = await runCli(['ctl', 'health', '--output-dir', out, '--timeout', '1'])
      assert.equal(hung.code, 1, hung.stdout + hung.stderr)
      assert.match(hung.stdout, /^WARNING: control socket not responding \(The daemon did not answer "status" .* within 1 s\.\)\n$/)
    } finally {
      server.close()
    }
  })
})
