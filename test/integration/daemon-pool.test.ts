import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import Database from 'better-sqlite3'

import {jobs, killAll, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {sameContent} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

interface HistoryRow {
  job_id: string
  at: string
  to_status: string
}

function query<T>(out: string, sql: string): T[] {
  const path = join(out, '.daemon', 'jobs.db')
  if (!existsSync(path)) return []
  const db = new Database(path, {readonly: true})
  try {
    return db.prepare(sql).all() as T[]
  } finally {
    db.close()
  }
}

const ms = (iso: string | null): number => {
  assert.ok(iso, 'timestamp set')
  return Date.parse(iso)
}

/** The most jobs whose [start, end] intervals overlap at one instant (an end at the same ms as a start does not overlap it). */
function maxOverlap(intervals: ReadonlyArray<{start: number; end: number}>): number {
  const events = intervals.flatMap((i) => [
    {at: i.start, delta: 1},
    {at: i.end, delta: -1},
  ])
  events.sort((a, b) => a.at - b.at || a.delta - b.delta)
  let now = 0
  let most = 0
  for (const e of events) {
    now += e.delta
    most = Math.max(most, now)
  }
  return most
}

describe('daemon: worker pool and SIGHUP reload', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  const daemons: RunningDaemon[] = []
  before(() => ({cleanup, dir} = makeTempDir('h2k-daemon-pool-')))
  afterEach(() => killAll(daemons))
  after(() => cleanup())

  it('10 files dropped with 4 workers: 4 run, 6 queued, each next one starts as one finishes; outputs match', async () => {
    const WORKERS = 4
    const FILES = 10
    const SLACK_MS = 5
    const base = join(dir, 'pool')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    const sources = join(base, 'sources')
    const staging = join(base, 'staging')
    for (const d of [watch, sources, staging]) mkdirSync(d, {recursive: true})
    // Incompressible 48 MiB disks, each different: a zlib-compressed qcow2 conversion takes ~1 s of CPU
    // each, so with 4 at once on a small machine every job visibly overlaps the others.
    const names = Array.from({length: FILES}, (_, i) => `disk${String(i).padStart(2, '0')}.raw`)
    for (const name of names) {
      execFileSync('dd', ['if=/dev/urandom', `of=${join(sources, name)}`, 'bs=1M', 'count=48', 'status=none'])
      execFileSync('cp', [join(sources, name), join(staging, name)])
    }
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\noutput_format: qcow2\ncompress: true\ncompression: zlib\n')
    const d = await startDaemon(['--config', config, '--max-concurrent-jobs', String(WORKERS)], out)
    daemons.push(d)

    const paused = await runCli(['ctl', 'pause', '--output-dir', out, '--json'])
    assert.equal(paused.json?.state, 'PAUSED', paused.stderr)
    // Drop all ten (renames: each file appears complete at once).
    for (const name of names) execFileSync('mv', [join(staging, name), join(watch, name)])
    await until('10 queued', () => jobs(out).filter((j) => j.status === 'queued').length === FILES, 30_000, d)
    await sleep(300)
    const before = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(before.code, 0, before.stderr)
    assert.equal(before.json.state, 'PAUSED')
    assert.equal(before.json.running, 0, 'nothing runs while paused')
    assert.equal(before.json.queued, FILES)
    assert.equal(before.json.max_concurrent_jobs, WORKERS)
    assert.ok(jobs(out).every((j) => j.started_at === null), 'no job was started while paused')

    const resumed = await runCli(['ctl', 'resume', '--output-dir', out, '--json'])
    assert.equal(resumed.json?.state, 'RUNNING', resumed.stderr)
    // While the first wave runs: 4 running, 6 queued, in the store and in ctl status.
    const wave = await until('4 running', () => {
      const all = jobs(out)
      return all.filter((j) => j.status === 'running').length === WORKERS ? all : undefined
    }, 10_000, d, 10)
    assert.equal(wave.filter((j) => j.status === 'queued').length, FILES - WORKERS)
    const during = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(during.code, 0, during.stderr)
    assert.ok(during.json.running <= WORKERS, `running ${during.json.running}`)
    assert.ok(during.json.queued <= FILES - WORKERS, `queued ${during.json.queued}`)
    // A job waits only while every worker is busy.
    if (during.json.queued > 0) assert.equal(during.json.running, WORKERS)

    const done = await until('all 10 succeeded', () => {
      const all = jobs(out)
      assert.ok(!all.some((j) => j.status === 'failed'), `a job failed:\n${d.stderr()}`)
      return all.length === FILES && all.every((j) => j.status === 'succeeded') ? all : undefined
    }, 90_000, d, 100)

    // The store's own timeline.
    const intervals = done.map((j) => ({end: ms(j.completed_at), id: j.id, start: ms(j.started_at)}))
    for (const i of intervals) assert.ok(i.end > i.start, 'every job took time')
    assert.ok(maxOverlap(intervals) <= WORKERS, `more than ${WORKERS} jobs ran at once`)
    assert.equal(maxOverlap(intervals), WORKERS, `never ${WORKERS} jobs at once`)
    const starts = intervals.map((i) => i.start).sort((a, b) => a - b)
    const ends = intervals.map((i) => i.end).sort((a, b) => a - b)
    // The first wave: four jobs start before any finishes.
    assert.ok(starts[WORKERS - 1]! <= ends[0]!, 'the first four start together')
    // Every later job waits for a free worker: the (k+1)-th start comes no earlier than the (k-3)-th end,
    // and promptly after it ("each next one starts as one finishes").
    for (let k = WORKERS; k < FILES; k++) {
      const freed = ends[k - WORKERS]!
      assert.ok(starts[k]! + SLACK_MS >= freed, `job #${k + 1} started ${freed - starts[k]!} ms before a worker was free`)
      const lastEndBefore = Math.max(...ends.filter((e) => e <= starts[k]! + SLACK_MS))
      assert.ok(starts[k]! - lastEndBefore < 2000, `job #${k + 1} started ${starts[k]! - lastEndBefore} ms after the last completion`)
    }

    // job_history agrees: queued → running → succeeded once each, at the recorded times.
    const history = query<HistoryRow>(out, 'SELECT job_id, at, to_status FROM job_history ORDER BY id')
    for (const job of done) {
      const rows = history.filter((h) => h.job_id === job.id)
      assert.deepEqual(rows.map((h) => h.to_status), ['queued', 'running', 'succeeded'], job.source_path)
      assert.ok(Math.abs(ms(rows[1]!.at) - ms(job.started_at)) <= 1000, 'running recorded at started_at')
      assert.ok(Math.abs(ms(rows[2]!.at) - ms(job.completed_at)) <= 1000, 'succeeded recorded at completed_at')
    }
    const historyIntervals = done.map((job) => {
      const rows = history.filter((h) => h.job_id === job.id)
      return {end: ms(rows[2]!.at), start: ms(rows[1]!.at)}
    })
    assert.ok(maxOverlap(historyIntervals) <= WORKERS, `job_history: more than ${WORKERS} running at once`)

    // Every output is a zlib-compressed qcow2 with exactly its own source's content.
    assert.deepEqual(done.map((j) => j.source_path).sort(), names)
    for (const job of done) {
      const output = join(job.output_path, job.source_path.replace(/\.raw$/, '.qcow2'))
      const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', output], {encoding: 'utf8'})) as {format: string; 'format-specific'?: {data?: {'compression-type'?: string}}}
      assert.equal(info.format, 'qcow2')
      assert.equal(info['format-specific']?.data?.['compression-type'], 'zlib', job.source_path)
      assert.ok(sameContent(output, 'qcow2', join(sources, job.source_path), 'raw'), `${job.source_path}: output differs from its source`)
    }
    const other = join(done[0]!.output_path, done[0]!.source_path.replace(/\.raw$/, '.qcow2'))
    assert.ok(!sameContent(other, 'qcow2', join(sources, done[1]!.source_path), 'raw'), 'the sources are distinct, so the comparison means something')

    const stopped = await runCli(['ctl', 'stop', '--output-dir', out, '--json'])
    assert.equal(stopped.json?.state, 'STOPPING', stopped.stderr)
    assert.equal(await d.exited, 0)
  })

  it('SIGHUP reloads the configuration file and logs what changed; an invalid file keeps the running settings', async () => {
    const base = join(dir, 'hup')
    const out = join(base, 'out')
    mkdirSync(join(base, 'queue'), {recursive: true})
    const config = join(base, 'daemon.yaml')
    const write = (max: number, retries: number, delay: number): void =>
      writeFileSync(config, `command: daemon\nwatch_dir: queue\noutput_dir: out\nmax_concurrent_jobs: ${max}\nverbose: 1\nretry_policy:\n  enabled: true\n  max_retries: ${retries}\n  retry_delay: ${delay}\n  backoff_multiplier: 2\n`)
    write(1, 3, 30)
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    const first = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(first.json?.max_concurrent_jobs, 1, first.stderr)
    // The SIGHUP handler is installed right after start-up; give it a moment past the first status reply.
    await sleep(300)

    write(3, 5, 2)
    d.child.kill('SIGHUP')
    const reloaded = await until('daemon:reloaded', () => d.stderr().split('\n').find((l) => l.includes('daemon:reloaded')), 10_000, d)
    assert.match(reloaded, /INFO daemon:reloaded /)
    // changed="a → b; c → d" (a quoted value is JSON-encoded in the log line).
    const field = /changed=("(?:[^"\\]|\\.)*"|\S+)/.exec(reloaded)?.[1]
    assert.ok(field, reloaded)
    const changed = (field.startsWith('"') ? (JSON.parse(field) as string) : field).split('; ')
    assert.ok(changed.includes('maxConcurrentJobs: 1 → 3'), changed.join(' | '))
    const retry = changed.find((c) => c.startsWith('retry: '))
    assert.ok(retry, changed.join(' | '))
    const [was, now] = retry.slice('retry: '.length).split(' → ').map((v) => JSON.parse(v) as Record<string, unknown>)
    const defaults = {jitter: 'full', maxDelay: 3600, noRetryOn: [], retryOn: []}
    assert.deepEqual(was, {...defaults, backoffMultiplier: 2, enabled: true, maxRetries: 3, retryDelay: 30})
    assert.deepEqual(now, {...defaults, backoffMultiplier: 2, enabled: true, maxRetries: 5, retryDelay: 2})
    assert.ok(!changed.some((c) => c.startsWith('verbose')), 'unchanged settings are not reported')
    const after = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(after.code, 0, after.stderr)
    assert.equal(after.json.max_concurrent_jobs, 3)
    assert.equal(after.json.pid, d.child.pid)

    // An invalid file: the reload fails, is logged with where the problem is, and nothing changes.
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\nmax_concurrent_jobs: lots\nverbose: 1\n')
    d.child.kill('SIGHUP')
    const failed = await until('daemon:reload-failed', () => d.stderr().split('\n').find((l) => l.includes('daemon:reload-failed')), 10_000, d)
    assert.match(failed, /ERROR daemon:reload-failed /)
    assert.match(failed, /daemon\.yaml:4:\d+/, `the message points at the bad line: ${failed}`)
    assert.match(failed, /max_concurrent_jobs/)
    assert.match(failed, /keeping the running configuration/)
    await sleep(200)
    assert.equal(d.child.exitCode, null, 'still running')
    const still = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(still.code, 0, still.stderr)
    assert.equal(still.json.state, 'RUNNING')
    assert.equal(still.json.max_concurrent_jobs, 3, 'the previous (reloaded) settings stay')
    assert.equal(d.stderr().split('\n').filter((l) => l.includes('daemon:reloaded')).length, 1, 'no second reload happened')

    // A YAML syntax error is refused the same way.
    writeFileSync(config, 'command: daemon\nwatch_dir: [queue\n')
    d.child.kill('SIGHUP')
    await until('second reload-failed', () => d.stderr().split('\n').filter((l) => l.includes('daemon:reload-failed')).length === 2, 10_000, d)
    assert.equal((await runCli(['ctl', 'status', '--output-dir', out, '--json'])).json.max_concurrent_jobs, 3)

    const stopped = await runCli(['ctl', 'stop', '--output-dir', out, '--json'])
    assert.equal(stopped.json?.state, 'STOPPING', stopped.stderr)
    assert.equal(await d.exited, 0)
  })
})
