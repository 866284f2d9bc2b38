import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {apiPort} from '../helpers/api-session.js'
import {jobs, startDaemon, today, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {attemptRows, historyDetails} from '../helpers/job-store-rows.js'
import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'

const TERMINAL = new Set(['succeeded', 'failed', 'duplicate', 'cancelled', 'dead', 'skipped'])

/** Dependencies (a DAG in one dropped job file) and the dead-letter queue, in real daemon processes on real disks. */
describe('daemon: job dependencies and the dead-letter queue', function () {
  this.timeout(180_000)
  const suite = daemonSuite('h2k-dag-')

  /** A workflow-mode daemon whose jobs may read `inputs/` (allowed_input_dirs), with its API on a free loopback port (the jobs and dlq commands use it). */
  function layout(name: string, extra = ''): {root: string; inbox: string; out: string; inputs: string; config: string} {
    const root = join(suite.dir, name, 'flow')
    const out = join(suite.dir, name, 'out')
    const inputs = join(suite.dir, name, 'inputs')
    const inbox = join(root, 'to_be_processed')
    for (const d of [inbox, inputs]) mkdirSync(d, {recursive: true})
    const config = join(suite.dir, name, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nworkflow_mode: true\nworkflow_dir: ${root}\noutput_dir: ${out}\nallowed_input_dirs: [${inputs}]\nmax_concurrent_jobs: 3\nfix: false\napi: {enabled: true, port: 0}\n${extra}`)
    return {config, inbox, inputs, out, root}
  }

  it('a DAG of 6 jobs with one failing parent: its dependents are skipped (transitively), the other branches run; retrying the fixed parent re-runs the skipped ones', async () => {
    const {config, inbox, inputs, out, root} = layout('dag')
    const raw = makePatternedRaw(join(inputs, 'source.raw'))
    for (const n of ['a', 'c', 'd', 'e', 'f']) convertFixture(raw, join(inputs, `${n}.qcow2`), 'qcow2')
    // b's input is no disk at all: H2K_INPUT_UNRECOGNIZED, permanent.
    writeFileSync(join(inputs, 'b.vmdk'), Buffer.alloc(1024 * 1024, 0x5a))
    const input = (n: string, ext = 'qcow2') => join(inputs, `${n}.${ext}`)
    // a → c → e, b → d → e, a → f
    const batch = {jobs: [
      {depends_on: ['c', 'd'], input: input('e'), name: 'e'},
      {input: input('a'), name: 'a'},
      {input: input('b', 'vmdk'), name: 'b'},
      {depends_on: ['a'], input: input('c'), name: 'c'},
      {depends_on: ['b'], input: input('d'), name: 'd'},
      {depends_on: ['a'], input: input('f'), name: 'f'},
    ]}
    const d = await startDaemon(['--config', config], out)
    suite.daemons.push(d)
    writeFileSync(join(inbox, 'wave.json'), JSON.stringify(batch))
    const byName = () => Object.fromEntries(jobs(out).map((j) => [j.name, j]))
    await until('all 6 ended', () => jobs(out).length === 6 && jobs(out).every((j) => TERMINAL.has(j.status)), 120_000, d)
    const first = byName()
    assert.deepEqual(Object.fromEntries(Object.entries(first).map(([n, j]) => [n, j.status])), {a: 'succeeded', b: 'failed', c: 'succeeded', d: 'skipped', e: 'skipped', f: 'succeeded'})
    assert.match(first.b!.error!, /H2K_INPUT_UNRECOGNIZED/)
    assert.ok(historyDetails(out, first.d!.id).includes(`skipped: dependency failed: ${first.b!.id}`), historyDetails(out, first.d!.id).join('\n'))
    assert.ok(historyDetails(out, first.e!.id).includes(`skipped: dependency failed: ${first.d!.id}`), historyDetails(out, first.e!.id).join('\n'))
    assert.match(first.e!.error!, /H2K_DEPENDENCY_FAILED/)
    const skippedLine = new RegExp(`job:skipped .*job=${first.d!.id}.*parent=${first.b!.id}`)
    await until('job:skipped logged', () => skippedLine.test(d.stderr()), 15_000, d)
    // Skipped jobs never ran; every job that ran started after each job it depends on had ended.
    const runs = attemptRows(out)
    assert.deepEqual(runs.filter((r) => r.job_id === first.d!.id || r.job_id === first.e!.id), [])
    const runOf = (n: string) => runs.find((r) => r.job_id === first[n]!.id)!
    for (const [child, parent] of [['c', 'a'], ['f', 'a']] as const) assert.ok(runOf(child).started_at >= runOf(parent).ended_at!, `${child} started before ${parent} ended`)
    assert.ok(sameContent(join(first.c!.output_path, 'c.qcow2'), 'qcow2', raw, 'raw'))

    // The claim settles to failed/ with its error file naming the root cause first and every job's status.
    const failed = join(root, 'failed', today())
    const record = await until('error file', () => existsSync(join(failed, 'wave.json.error.json')) && JSON.parse(readFileSync(join(failed, 'wave.json.error.json'), 'utf8')), 15_000, d)
    assert.equal(record.error_code, 'H2K_INPUT_UNRECOGNIZED')
    assert.deepEqual(Object.fromEntries((record.jobs as Array<{name: string; status: string}>).map((j) => [j.name, j.status])), {a: 'succeeded', b: 'failed', c: 'succeeded', d: 'skipped', e: 'skipped', f: 'succeeded'})

    // Fix b's input and retry it (failed, not dead: `jobs retry`, through the API): b, then d, then e run.
    convertFixture(raw, input('b', 'vmdk'), 'vmdk')
    const retried = await runCli(['jobs', 'retry', first.b!.id, '--url', `http://127.0.0.1:${await apiPort(d)}`, '--json'])
    assert.equal(retried.code, 0, retried.stderr)
    assert.deepEqual(retried.json.jobs.map((q: {name: string}) => q.name).sort(), ['b', 'd', 'e'])
    await until('b, d, e succeeded', () => ['b', 'd', 'e'].every((n) => byName()[n]?.status === 'succeeded'), 120_000, d)
    const again = attemptRows(out)
    const lastRun = (n: string) => again.filter((r) => r.job_id === first[n]!.id).at(-1)!
    assert.deepEqual(again.filter((r) => r.job_id === first.b!.id).map((r) => r.outcome), ['failed', 'succeeded'], 'both runs of b recorded')
    assert.ok(lastRun('d').started_at >= lastRun('b').ended_at!)
    assert.ok(lastRun('e').started_at >= lastRun('d').ended_at!)
    assert.ok(sameContent(join(byName().e!.output_path, 'e.qcow2'), 'qcow2', raw, 'raw'))
    assert.equal(byName().a!.attempts, 1, 'a did not run again')
  })

  it('a dropped batch whose depends_on forms a cycle (or names no job) is refused whole, permanently, with the cycle named in its error file', async () => {
    const {config, inbox, inputs, out, root} = layout('cycle')
    const raw = makePatternedRaw(join(inputs, 'x.raw'))
    writeFileSync(join(inbox, 'loop.json'), JSON.stringify({jobs: [{depends_on: ['b'], input: raw, name: 'a'}, {depends_on: ['a'], input: raw, name: 'b'}]}))
    writeFileSync(join(inbox, 'ghost.json'), JSON.stringify({jobs: [{depends_on: ['nobody'], input: raw, name: 'a'}]}))
    const d = await startDaemon(['--config', config], out)
    suite.daemons.push(d)
    const failed = join(root, 'failed', today())
    const record = (name: string) => until(`${name} error file`, () => existsSync(join(failed, `${name}.error.json`)) && JSON.parse(readFileSync(join(failed, `${name}.error.json`), 'utf8')), 30_000, d)
    const loop = await record('loop.json')
    assert.equal(loop.error_code, 'H2K_JOB_INVALID')
    assert.match(loop.error, /cycle: "a" → "b" → "a"/)
    assert.equal(loop.permanent, true)
    const ghost = await record('ghost.json')
    assert.match(ghost.error, /jobs\[0\]\.depends_on\[0\]: unknown job "nobody"/)
    assert.deepEqual(jobs(out).map((j) => j.status).sort(), ['failed', 'failed'], 'one failed job per refused file, nothing ran')
  })

  it('a retryable failure (retry_on lists the code) exhausts its retries and lands in the DLQ (dead, every attempt recorded); dlq list/show/retry/purge', async () => {
    const {config, inbox, out, root} = layout('dlq', 'retry_policy:\n  max_retries: 2\n  retry_delay: 0.05\n  backoff_multiplier: 1\n  retry_on: [H2K_INPUT_UNRECOGNIZED]\n')
    const d = await startDaemon(['--config', config], out)
    suite.daemons.push(d)
    writeFileSync(join(inbox, 'junk.vmdk'), Buffer.alloc(1024 * 1024, 0x5a))
    const job = await until('dead', () => jobs(out).find((j) => j.status === 'dead'), 60_000, d)
    assert.equal(job.attempts, 3)
    const runs = attemptRows(out).filter((r) => r.job_id === job.id)
    assert.deepEqual(runs.map((r) => [r.attempt, r.outcome, JSON.parse(r.error_json!).code]), [[1, 'retry', 'H2K_INPUT_UNRECOGNIZED'], [2, 'retry', 'H2K_INPUT_UNRECOGNIZED'], [3, 'dead', 'H2K_INPUT_UNRECOGNIZED']])
    // The line follows the store's write, and reaches this process through a pipe: waited for, not assumed.
    await until('ERROR job:dead logged', () => /ERROR job:dead /.test(d.stderr()), 15_000, d)
    // The error file is written before the input moves beside it: both are waited for (the retry below needs the move).
    const record = await until('error file and input in failed/', () => existsSync(join(root, 'failed', today(), 'junk.vmdk')) && existsSync(join(root, 'failed', today(), 'junk.vmdk.error.json')) && JSON.parse(readFileSync(join(root, 'failed', today(), 'junk.vmdk.error.json'), 'utf8')), 15_000, d)
    assert.equal(record.retry_info.reason_not_retried, 'max_retries reached')

    const api = ['--url', `http://127.0.0.1:${await apiPort(d)}`]
    const listed = await runCli(['dlq', 'list', ...api, '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    assert.deepEqual(listed.json.jobs.map((j: {id: string}) => j.id), [job.id])
    const human = await runCli(['dlq', 'list', ...api])
    assert.match(human.stdout, new RegExp(`^${job.id} +3 +\\S+ +junk +H2K_INPUT_UNRECOGNIZED$`, 'm'))
    const shown = await runCli(['dlq', 'show', job.id.slice(0, 6), ...api, '--json'])
    assert.equal(shown.code, 0, shown.stderr)
    assert.deepEqual(shown.json.attempts.map((a: {outcome: string}) => a.outcome), ['retry', 'retry', 'dead'])
    assert.equal(shown.json.job.error.code, 'H2K_INPUT_UNRECOGNIZED')
    // Its dropped file moved on to failed/: a retry cannot find it, and says so.
    const retry = await runCli(['dlq', 'retry', job.id, ...api])
    assert.equal(retry.code, 2)
    assert.match(retry.stderr, /H2K_JOB_STATE[\s\S]*input is gone/)
    const bare = await runCli(['dlq', 'purge', ...api])
    assert.equal(bare.code, 2, 'purge without an id or --all is refused')
    const purged = await runCli(['dlq', 'purge', '--all', '--yes', ...api, '--json'])
    assert.deepEqual(purged.json, {deleted: 1})
    assert.deepEqual(jobs(out), [])
  })
})
