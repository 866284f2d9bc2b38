import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {jobs as storeJobs, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {type ApiSession as Session, ApiSession, apiPort} from '../helpers/api-session.js'
import {checkRequest, documentedOperations, expectValidComponent} from '../helpers/openapi-check.js'
import {type CliResult, runCli} from '../helpers/run-cli.js'

const TOKEN = 'c0ffee00c0ffee00c0ffee00c0ffee00'

interface Setup {
  base: string
  disks: string
  out: string
  config: string
  tokenFile: string
}

/** A daemon configuration with the API on a free loopback port, a token, and a directory of tiny raw disks it may read. */
function setup(base: string, api: Record<string, unknown>): Setup {
  const disks = join(base, 'disks')
  const watch = join(base, 'queue')
  const out = join(base, 'out')
  mkdirSync(disks, {recursive: true})
  mkdirSync(watch, {recursive: true})
  const tokenFile = join(base, 'api.token')
  writeFileSync(tokenFile, `${TOKEN}\n`, {mode: 0o600})
  for (const name of ['a', 'b', 'c']) execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(disks, `${name}.raw`), '1M'])
  writeFileSync(join(disks, 'bad.vmdk'), 'this is not a disk\n')
  const config = join(base, 'daemon.yaml')
  writeFileSync(config, `command: daemon\nwatch_dir: ${watch}\noutput_dir: ${out}\nallowed_input_dirs: [${disks}]\nfix: false\nverbose: 3\napi: ${JSON.stringify({enabled: true, port: 0, token_file: tokenFile, ...api})}\n`)
  return {base, config, disks, out, tokenFile}
}

const terminal = (s: string) => ['succeeded', 'failed', 'duplicate', 'cancelled', 'dead', 'skipped'].includes(s)

/** Poll GET /api/v1/jobs/{id} until the job is finished (or has `status`): its detail. */
async function settled(api: Session, id: string, status?: string): Promise<any> {
  for (let i = 0; i < 300; i++) {
    const answer = await api.call('GET', `/api/v1/jobs/${id}`)
    if (status === undefined ? terminal(answer.body.job.status) : answer.body.job.status === status) return answer.body
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`job ${id} did not finish`)
}

/** A CLI run that must end within `ms` (killed, and the test failed, when it does not: a watch that never ends). */
async function cliWithin(ms: number, args: string[]): Promise<CliResult> {
  let pid: number | undefined
  let timer: NodeJS.Timeout | undefined
  const run = runCli(args, {onSpawn: (p) => (pid = p)})
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (pid !== undefined) process.kill(pid, 'SIGKILL')
      reject(new Error(`hyper2kvm ${args.slice(0, 3).join(' ')} did not end within ${ms} ms`))
    }, ms)
  })
  try {
    return await Promise.race([run, limit])
  } finally {
    clearTimeout(timer)
  }
}

/** An ISO time at the start of a `jobs watch` line. */
const TIME = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`

/** The REST API of a real daemon process on loopback: every answer validated against openapi.yaml. */
describe('daemon: the job service REST API (openapi.yaml)', function () {
  this.timeout(120_000)
  const suite = daemonSuite('h2k-api-', {killAfter: 'all'})
  let s: Setup
  let d: RunningDaemon
  let api: ApiSession

  before(async () => {
    s = setup(join(suite.dir, 'main'), {max_body_bytes: 2048, rate_limit: {burst: 1000, requests_per_minute: 60_000}})
    d = await startDaemon(['--config', s.config, '--output-dir', s.out])
    suite.daemons.push(d)
    api = new ApiSession(await apiPort(d), TOKEN)
    assert.match(d.stderr(), /api:listening address=127\.0\.0\.1 auth="bearer \(file\)"/)
  })

  it('health is open; everything else wants the token (401 without it or with a wrong one)', async () => {
    const health = await api.call('GET', '/api/v1/health', {token: null})
    assert.equal(health.status, 200)
    assert.equal(health.body.status, 'ok')
    for (const token of [null, `${TOKEN.slice(0, -1)}x`]) {
      const refused = await api.call('GET', '/api/v1/jobs', {token})
      assert.equal(refused.status, 401)
      assert.equal(refused.headers['www-authenticate'], 'Bearer realm="hyper2kvm"')
      const submit = await api.call('POST', '/api/v1/jobs', {body: {input: join(s.disks, 'a.raw')}, token})
      assert.equal(submit.status, 401)
    }
    assert.equal(storeJobs(s.out).length, 0, 'nothing was queued without the token')
    assert.equal((await api.call('GET', '/api/v1/jobs/nope')).status, 404)
  })

  it('submit → job.created, job.started, job.progress, job.completed on the event stream → the job with its history, attempts, report and log', async () => {
    const stream = await api.events()
    assert.equal(stream.status, 200)
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/)
    const submitted = await api.call('POST', '/api/v1/jobs', {body: {input: join(s.disks, 'a.raw'), name: 'alpha'}, headers: {'X-Request-Id': 'trace-submit-1'}})
    assert.equal(submitted.status, 201, submitted.text)
    assert.equal(submitted.body.request_id, 'trace-submit-1')
    const [job] = submitted.body.jobs
    assert.equal(job.status, 'queued')
    assert.equal(job.origin, 'api')
    const completed = await stream.waitFor('job.completed', (e) => e.event === 'job.completed' && e.data.job_id === job.id)
    stream.close()
    const mine = stream.events.filter((e) => e.data.job_id === job.id)
    const names = mine.map((e) => e.event)
    assert.deepEqual([...new Set(names)], ['job.created', 'job.started', 'job.progress', 'job.completed'], names.join(','))
    assert.ok(mine.every((e, i) => i === 0 || e.id > mine[i - 1]!.id), 'event ids increase')
    for (const e of stream.events) expectValidComponent('LifecycleEventData', e.data)
    assert.ok(mine.every((e) => !Number.isNaN(Date.parse(e.data.timestamp))), 'every event says when it happened')
    assert.equal(completed.data.job_name, 'alpha')
    assert.equal(completed.data.output_path, job.output_path)

    const shown = await api.call('GET', `/api/v1/jobs/${job.id.slice(0, 6)}`)
    assert.equal(shown.status, 200)
    assert.equal(shown.body.job.status, 'succeeded')
    assert.deepEqual(shown.body.history.map((h: {to_status: string}) => h.to_status), ['queued', 'running', 'succeeded'])
    assert.match(shown.body.history[0].detail, /request trace-submit-1/)
    assert.equal(shown.body.attempts.length, 1)
    assert.equal(shown.body.attempts[0].outcome, 'succeeded')
    assert.equal(shown.body.report.job_id, job.id)
    assert.ok(shown.body.report.stages.length > 0)

    const log = await api.call('GET', `/api/v1/jobs/${job.id}/log`)
    assert.equal(log.status, 200)
    const events = log.body.lines.map((l: {event: string}) => l.event)
    for (const e of ['job:queued', 'job:start', 'job:succeeded']) assert.ok(events.includes(e), `${e} in ${events.join(',')}`)
    assert.ok(log.body.lines.every((l: {seq: number}, i: number) => l.seq === i + 1))
    assert.ok(!JSON.stringify(log.body).includes(TOKEN))
    const after = await api.call('GET', `/api/v1/jobs/${job.id}/log?after=${log.body.last_seq}`)
    assert.deepEqual(after.body.lines, [])
    assert.equal(after.body.last_seq, log.body.last_seq)
  })

  it('request ids: the X-Request-Id given comes back in the reply and the error, and is in the API listener\'s log lines', async () => {
    const shown = await api.call('GET', '/api/v1/jobs?limit=1', {headers: {'X-Request-Id': 'trace-list-7'}})
    assert.equal(shown.headers['x-request-id'], 'trace-list-7')
    const refused = await api.call('POST', '/api/v1/jobs', {body: {input: join(s.disks, 'a.raw'), output_format: 'nope'}, headers: {'X-Request-Id': 'trace-refused-8'}})
    assert.equal(refused.body.error.request_id, 'trace-refused-8')
    const lines = await until('both logged', () => {
      const log = d.stderr()
      const list = /^.* DEBUG http:request .*path=\/api\/v1\/jobs request_id=trace-list-7 route=jobs-list status=200$/m.exec(log)
      const submit = /^.* DEBUG http:request .*method=POST path=\/api\/v1\/jobs request_id=trace-refused-8 route=jobs-submit status=400$/m.exec(log)
      return list && submit ? [list[0], submit[0]] : undefined
    }, 10_000, d)
    assert.equal(lines.length, 2)
    assert.match(d.stderr(), /INFO api:refused code=H2K_JOB_INVALID request_id=trace-refused-8 route=jobs-submit status=400/)
  })

  it('refuses an input outside allowed_input_dirs (403 H2K_UNSAFE_PATH) and queues nothing of the batch', async () => {
    const before = storeJobs(s.out).length
    const outside = join(s.base, 'outside.raw')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', outside, '1M'])
    const link = join(s.disks, 'sneaky.raw')
    symlinkSync(outside, link)
    for (const input of [outside, link]) {
      const refused = await api.call('POST', '/api/v1/jobs', {body: {jobs: [{input: join(s.disks, 'b.raw'), name: 'fine'}, {input, name: 'escape'}]}})
      assert.equal(refused.status, 403, refused.text)
      assert.equal(refused.body.error.code, 'H2K_UNSAFE_PATH')
      if (input === link) assert.doesNotMatch(refused.text, /outside\.raw/, 'where a refused symlink points is never told')
    }
    assert.equal(storeJobs(s.out).length, before, 'not one job of the batch was queued')
  })

  it('invalid documents, bodies and parameters: 400 with violations, 415, 413 — never echoing what was sent', async () => {
    const invalid = await api.call('POST', '/api/v1/jobs', {body: {input: join(s.disks, 'a.raw'), output_format: 'floppy-MARKER'}})
    assert.equal(invalid.status, 400)
    assert.equal(invalid.body.error.code, 'H2K_JOB_INVALID')
    assert.ok(invalid.body.error.details.violations.some((v: {path: string}) => v.path.includes('output_format')), invalid.text)
    assert.doesNotMatch(invalid.text, /MARKER/, 'the refused value is not quoted back')
    // openapi.yaml's JobDocument is the job-file schema: it refuses what the daemon's schema refuses, and takes a full DAG document.
    for (const body of [{input: join(s.disks, 'a.raw'), output_format: 'floppy-MARKER'}, {input: join(s.disks, 'a.raw'), bogus_key: 1}, {jobs: [{depends_on: 'x', input: 'a'}]}, {input: 'a', retry: {backoff: 'sometimes'}}, {input: 'a', window_end: 'never'}]) {
      assert.equal(checkRequest('POST', '/api/v1/jobs', body).valid, false, JSON.stringify(body))
      const answer = await api.call('POST', '/api/v1/jobs', {body})
      assert.equal(answer.status, 400, answer.text)
      assert.equal(answer.body.error.code, 'H2K_JOB_INVALID')
    }
    const wave = {jobs: [{input: 'a', name: 'db', retry: {backoff: 'fixed', max_retries: 2, retry_on: ['H2K_TOOL_FAILED']}}, {depends_on: ['db'], input: 'b', name: 'app', window: {days: ['mon-fri'], hours: '22:00-06:00', timezone: 'Europe/Berlin'}, window_end: 'finish'}], output_format: 'qcow2', override_window: false}
    assert.deepEqual(checkRequest('POST', '/api/v1/jobs', wave), {errors: 'No errors', valid: true})
    const notJson = await api.call('POST', '/api/v1/jobs', {raw: '{"input": MARKER-not-json', headers: {'Content-Type': 'application/json'}})
    assert.equal(notJson.status, 400)
    assert.doesNotMatch(notJson.text, /MARKER/)
    const wrongType = await api.call('POST', '/api/v1/jobs', {raw: 'input=x', headers: {'Content-Type': 'application/x-www-form-urlencoded'}})
    assert.equal(wrongType.status, 415)
    assert.equal(wrongType.headers.connection, 'close', 'a body left unread is never parsed as the next request')
    const big = await api.call('POST', '/api/v1/jobs', {body: {input: join(s.disks, 'a.raw'), name: `MARKER${'x'.repeat(4000)}`}})
    assert.equal(big.status, 413)
    assert.doesNotMatch(big.text, /MARKER/)
    // Chunked: no length announced, counted as it arrives.
    const chunked = await api.call('POST', '/api/v1/jobs', {headers: {'Transfer-Encoding': 'chunked'}, raw: JSON.stringify({input: join(s.disks, 'a.raw'), name: `MARKER${'x'.repeat(4000)}`})})
    assert.equal(chunked.status, 413)
    const smallChunked = await api.call('POST', '/api/v1/jobs', {headers: {'Transfer-Encoding': 'chunked'}, raw: JSON.stringify({input: join(s.disks, 'a.raw'), output_format: 'nope'})})
    assert.equal(smallChunked.status, 400, 'a small chunked body is read and validated')
    const empty = await api.call('POST', '/api/v1/jobs')
    assert.equal(empty.status, 400)
    for (const query of ['?limit=0', '?limit=x', '?status=bogus', '?cursor=%25%25']) assert.equal((await api.call('GET', `/api/v1/jobs${query}`)).status, 400, query)
    assert.equal((await api.call('GET', '/api/v1/jobs/x/log?after=-1')).status, 400)
    assert.equal(d.child.exitCode, null)
  })

  it('cancel a queued job (409 once finished), retry it, and it runs', async () => {
    assert.equal((await runCli(['ctl', 'pause', '--output-dir', s.out])).code, 0)
    const submitted = await api.call('POST', '/api/v1/jobs', {body: {input: join(s.disks, 'b.raw'), name: 'bravo'}})
    const id = submitted.body.jobs[0].id
    const cancelled = await api.call('POST', `/api/v1/jobs/${id}/cancel`, {body: {reason: 'window moved'}})
    assert.equal(cancelled.status, 200, cancelled.text)
    assert.equal(cancelled.body.job.status, 'cancelled')
    const again = await api.call('POST', `/api/v1/jobs/${id}/cancel`)
    assert.equal(again.status, 409)
    assert.equal(again.body.error.code, 'H2K_JOB_STATE')
    assert.equal((await api.call('POST', '/api/v1/jobs/nope/cancel')).status, 404)
    const retried = await api.call('POST', `/api/v1/jobs/${id}/retry`)
    assert.equal(retried.status, 200)
    assert.deepEqual(retried.body.jobs.map((j: {id: string; status: string}) => [j.id, j.status]), [[id, 'queued']])
    assert.equal((await runCli(['ctl', 'resume', '--output-dir', s.out])).code, 0)
    const done = await settled(api, id)
    assert.equal(done.job.status, 'succeeded')
    assert.deepEqual(done.history.map((h: {to_status: string}) => h.to_status), ['queued', 'cancelled', 'queued', 'running', 'succeeded'])
    assert.equal((await api.call('POST', `/api/v1/jobs/${id}/retry`)).status, 409, 'a succeeded job is not retried')
  })

  it('cancel a RUNNING job: 200 while it is aborted, then cancelled (H2K_CANCELLED) with its attempt cancelled, its dependent skipped', async () => {
    const big = join(s.disks, 'big.raw')
    // Random bytes compressed with zlib: seconds of qemu-img, long enough to be caught running.
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=128', 'status=none'])
    const submitted = await api.call('POST', '/api/v1/jobs', {body: {compress: true, compression: 'zlib', jobs: [{input: big, name: 'big'}, {depends_on: ['big'], input: join(s.disks, 'c.raw'), name: 'after-big'}]}})
    assert.equal(submitted.status, 201, submitted.text)
    const [parent, child] = submitted.body.jobs
    await settled(api, parent.id, 'running')
    const cancelled = await api.call('POST', `/api/v1/jobs/${parent.id}/cancel`, {body: {reason: 'operator said so'}})
    assert.equal(cancelled.status, 200, cancelled.text)
    assert.equal(cancelled.body.job.status, 'running', 'answered at once; the abort follows')
    const done = await settled(api, parent.id)
    assert.equal(done.job.status, 'cancelled')
    assert.equal(done.job.error.code, 'H2K_CANCELLED')
    assert.deepEqual(done.attempts.map((a: {outcome: string}) => a.outcome), ['cancelled'])
    assert.equal((await settled(api, child.id)).job.status, 'skipped')
    assert.equal((await api.call('POST', `/api/v1/jobs/${parent.id}/cancel`)).status, 409, 'once cancelled, it is finished')
  })

  it('pages through jobs with a cursor: every job once, newest first, next_cursor null on the last page', async () => {
    assert.equal((await runCli(['ctl', 'pause', '--output-dir', s.out])).code, 0)
    const batch = await api.call('POST', '/api/v1/jobs', {body: {jobs: ['p1', 'p2', 'p3', 'p4', 'p5'].map((name) => ({input: join(s.disks, 'c.raw'), name}))}})
    assert.equal(batch.status, 201)
    const all = storeJobs(s.out).length
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page: any = await api.call('GET', `/api/v1/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      assert.equal(page.status, 200)
      assert.ok(page.body.jobs.length <= 2)
      seen.push(...page.body.jobs.map((j: {id: string}) => j.id))
      cursor = page.body.next_cursor
      pages++
    } while (cursor !== null && pages < 50)
    assert.equal(seen.length, all)
    assert.equal(new Set(seen).size, all, 'no job twice')
    assert.deepEqual(seen.slice(0, 5), batch.body.jobs.map((j: {id: string}) => j.id).reverse(), 'newest first')
    const queued = await api.call('GET', '/api/v1/jobs?status=queued&limit=500')
    assert.equal(queued.body.jobs.length, 5)
    assert.equal(queued.body.next_cursor, null)
    // Cancel them (the pool stays free for the next tests).
    for (const j of batch.body.jobs) assert.equal((await api.call('POST', `/api/v1/jobs/${j.id}/cancel`)).status, 200)
    assert.equal((await runCli(['ctl', 'resume', '--output-dir', s.out])).code, 0)
  })

  it('the dead-letter queue over HTTP and the dlq CLI: jobs whose retries ran out are listed, shown, retried (announced, and they run) and purged (--all only when confirmed)', async () => {
    const url = `http://127.0.0.1:${api.port}`
    const flags = ['--url', url, '--token-file', s.tokenFile]
    const stream = await api.events('?events=job.failed,job.dead')
    const broken = (name: string) => ({input: join(s.disks, 'bad.vmdk'), name, retry: {backoff: 'none', max_retries: 1, retry_on: ['H2K_INPUT_UNRECOGNIZED']}})
    const submitted = await api.call('POST', '/api/v1/jobs', {body: {jobs: [broken('broken-1'), broken('broken-2')]}})
    const [id, other] = submitted.body.jobs.map((j: {id: string}) => j.id) as [string, string]
    for (const j of [id, other]) await stream.waitFor('job.dead', (e) => e.event === 'job.dead' && e.data.job_id === j)
    stream.close()
    assert.deepEqual(stream.events.filter((e) => e.data.job_id === id).map((e) => `${e.event}:${e.data.retrying ?? ''}`), ['job.failed:true', 'job.failed:false', 'job.dead:'])
    const dlq = await api.call('GET', '/api/v1/dlq')
    assert.deepEqual(dlq.body.jobs.map((j: {id: string}) => j.id).sort(), [id, other].sort())
    const dead = await api.call('GET', `/api/v1/dlq/${id}`)
    assert.equal(dead.body.job.error.code, 'H2K_INPUT_UNRECOGNIZED')
    assert.equal(dead.body.attempts.length, 2)
    const notDead = storeJobs(s.out).find((j) => j.status === 'succeeded')!
    assert.equal((await api.call('GET', `/api/v1/dlq/${notDead.id}`)).status, 404)
    const retried = await api.call('POST', `/api/v1/dlq/${id}/retry`)
    assert.equal(retried.status, 200)
    assert.equal(retried.body.jobs[0].status, 'queued')
    await settled(api, id, 'dead')
    assert.deepEqual((await api.call('DELETE', `/api/v1/dlq/${id}`)).body, {deleted: 1})
    assert.equal((await api.call('GET', `/api/v1/jobs/${id}`)).status, 404)

    // The CLI goes through the same API: what it re-queues is announced (job.created) and runs at once.
    const [listed, shown, notInQueue] = await Promise.all([runCli(['dlq', 'list', ...flags, '--json']), runCli(['dlq', 'show', other.slice(0, 6), ...flags]), runCli(['dlq', 'show', notDead.id, ...flags])])
    assert.equal(listed.code, 0, listed.stderr)
    assert.deepEqual(listed.json.jobs.map((j: {id: string}) => j.id), [other])
    assert.equal(shown.code, 0, shown.stderr)
    assert.match(shown.stdout, /^status\s+dead$/m)
    assert.match(shown.stdout, /^ {2}#2 .* dead\s+H2K_INPUT_UNRECOGNIZED: /m)
    assert.equal(notInQueue.code, 2, notInQueue.stderr)
    const heard = await api.events(`?job=${other}&events=job.created,job.started,job.dead`)
    const requeued = await runCli(['dlq', 'retry', other, ...flags, '--json'])
    assert.equal(requeued.code, 0, requeued.stderr)
    assert.deepEqual(requeued.json.jobs.map((j: {id: string; status: string}) => [j.id, j.status]), [[other, 'queued']])
    await heard.waitFor('dead again', (e) => e.event === 'job.dead')
    heard.close()
    assert.deepEqual(heard.events.map((e) => e.event), ['job.created', 'job.started', 'job.started', 'job.dead'], 'announced, ran twice, dead again')
    const unconfirmed = await runCli(['dlq', 'purge', '--all', ...flags])
    assert.equal(unconfirmed.code, 2, unconfirmed.stderr)
    assert.match(unconfirmed.stderr, /confirm with --yes/)
    assert.equal((await api.call('DELETE', '/api/v1/dlq')).status, 400, 'purging all needs ?confirm=yes')
    assert.equal((await api.call('GET', `/api/v1/dlq/${other}`)).status, 200, 'nothing was purged')
    const purged = await runCli(['dlq', 'purge', '--all', '--yes', ...flags, '--json'])
    assert.deepEqual(purged.json, {deleted: 1})
    assert.equal((await api.call('GET', `/api/v1/jobs/${other}`)).status, 404)
    assert.deepEqual((await api.call('DELETE', '/api/v1/dlq?confirm=yes')).body, {deleted: 0})
  })

  it('the jobs CLI end to end: submit (relative inputs), cancel and retry, watch (live, and of a finished job), list, show, logs; refusals; no token: H2K_API_REFUSED', async () => {
    const url = `http://127.0.0.1:${api.port}`
    const flags = ['--url', url, '--token-file', s.tokenFile]
    const jobFile = join(s.disks, 'wave.yaml')
    writeFileSync(jobFile, 'jobs:\n  - name: cli-one\n    input: a.raw\n  - name: cli-two\n    input: b.raw\n    depends_on: [cli-one]\n  - name: cli-bad\n    input: bad.vmdk\n  - name: cli-child\n    input: c.raw\n    depends_on: [cli-bad]\n')
    assert.equal((await runCli(['ctl', 'pause', '--output-dir', s.out])).code, 0)
    const submit = await runCli(['jobs', 'submit', jobFile, ...flags, '--json'])
    assert.equal(submit.code, 0, submit.stderr)
    const [one, two, bad, child] = submit.json.jobs as Array<{id: string; name: string; vm_path: string}>
    assert.deepEqual([one!.name, two!.name, bad!.name, child!.name], ['cli-one', 'cli-two', 'cli-bad', 'cli-child'])
    assert.equal(one!.vm_path, join(s.disks, 'a.raw'))

    // Cancel (queued: the pool is paused) skips its dependent; retry brings both back.
    const cancel = await runCli(['jobs', 'cancel', one!.id, '--reason', 'not yet', ...flags])
    assert.equal(cancel.code, 0, cancel.stderr)
    assert.equal(cancel.stdout.trim(), `${one!.id} cancelled`)
    const retry = await runCli(['jobs', 'retry', one!.id.slice(0, 8), ...flags, '--json'])
    assert.equal(retry.code, 0, retry.stderr)
    assert.deepEqual(retry.json.jobs.map((j: {id: string; status: string}) => [j.id, j.status]).sort(), [[one!.id, 'queued'], [two!.id, 'queued']].sort())

    // Watches opened while the jobs wait: each asks for its job once its stream is open (that GET is in the daemon's log).
    const watching = [two!, bad!, child!].map((j) => ({job: j, run: cliWithin(60_000, ['jobs', 'watch', j.id, ...flags])}))
    await until('the watches asked for their jobs', () => [two!, bad!, child!].every((j) => new RegExp(`http:request .*method=GET path=/api/v1/jobs/${j.id} `).test(d.stderr())), 30_000, d)
    assert.equal((await runCli(['ctl', 'resume', '--output-dir', s.out])).code, 0)
    const [watchedTwo, watchedBad, watchedChild] = await Promise.all(watching.map((w) => w.run))
    for (const w of [watchedTwo, watchedBad, watchedChild]) assert.equal(w!.code, 0, w!.stderr)
    assert.match(watchedTwo!.stdout, new RegExp(`^${TIME}  job\\.started\\s+${two!.id}  cli-two$`, 'm'))
    assert.match(watchedTwo!.stdout, new RegExp(`^${TIME}  job\\.completed\\s+${two!.id}  cli-two  [\\d.]+ s → /\\S+$`, 'm'))
    assert.match(watchedBad!.stdout, new RegExp(`^${TIME}  job\\.failed\\s+${bad!.id}  cli-bad  H2K_INPUT_UNRECOGNIZED no more retries$`, 'm'))
    assert.match(watchedChild!.stdout, new RegExp(`^${TIME}  job\\.skipped\\s+${child!.id}  cli-child  parent ${bad!.id} did not succeed$`, 'm'))

    // Independent calls at once (each is a node start-up): reads, refusals, a watch of jobs that have finished.
    const clientConfig = join(s.base, 'client.yaml')
    // The daemon's configuration names the port (0 there: the one it got) and the token file.
    writeFileSync(clientConfig, readFileSync(s.config, 'utf8').replace('"port":0', `"port":${api.port}`))
    const [list, table, show, showText, logs, follow, refusedCancel, refusedRetry, missing, noToken, envToken, fromConfig, down, watchedDone, watchedSkipped] = await Promise.all([
      runCli(['jobs', 'list', ...flags, '--json', '--limit', '500']),
      runCli(['jobs', 'list', ...flags, '--status', 'succeeded']),
      runCli(['jobs', 'show', two!.id, ...flags, '--json']),
      runCli(['jobs', 'show', two!.id, ...flags]),
      runCli(['jobs', 'logs', two!.id, ...flags]),
      runCli(['jobs', 'logs', one!.id, '--follow', ...flags, '--json']),
      runCli(['jobs', 'cancel', one!.id, ...flags]),
      runCli(['jobs', 'retry', one!.id, ...flags, '--json']),
      runCli(['jobs', 'show', 'zzzzzzzz', ...flags]),
      runCli(['jobs', 'list', '--url', url], {env: {HYPER2KVM_API_TOKEN: ''}}),
      runCli(['jobs', 'list', '--url', url, '--json'], {env: {HYPER2KVM_API_TOKEN: TOKEN}}),
      runCli(['jobs', 'list', '--config', clientConfig, '--json']),
      runCli(['jobs', 'list', '--url', 'http://127.0.0.1:9']),
      cliWithin(30_000, ['jobs', 'watch', one!.id, ...flags]),
      cliWithin(30_000, ['jobs', 'watch', child!.id, ...flags, '--json']),
    ])
    assert.equal(list.code, 0, list.stderr)
    assert.ok(list.json.jobs.some((j: {id: string; status: string}) => j.id === one!.id && j.status === 'succeeded'))
    assert.match(table.stdout, /^ID\s+STATUS\s+ORIGIN/)
    assert.match(table.stdout, new RegExp(`${two!.id}\\s+succeeded\\s+api`))
    assert.equal(show.code, 0, show.stderr)
    assert.deepEqual(show.json.depends_on, [one!.id])
    assert.match(showText.stdout, new RegExp(`depends on\\s+${one!.id}`))
    assert.equal(logs.code, 0, logs.stderr)
    assert.match(logs.stdout, /INFO job:start file=b\.raw attempt=1/)
    assert.match(logs.stdout, /INFO job:succeeded/)
    assert.equal(follow.code, 0, follow.stderr)
    assert.ok(follow.json.lines.some((l: {event: string}) => l.event === 'job:succeeded'))
    assert.equal(refusedCancel.code, 2, refusedCancel.stderr)
    assert.match(refusedCancel.stderr, /H2K_JOB_STATE/)
    assert.equal(refusedRetry.json.error.code, 'H2K_JOB_STATE')
    assert.equal(missing.code, 2)
    assert.equal(noToken.code, 12, noToken.stderr)
    assert.match(noToken.stderr, /H2K_API_REFUSED/)
    assert.equal(envToken.code, 0, envToken.stderr)
    assert.equal(fromConfig.code, 0, JSON.stringify(fromConfig.json))
    assert.equal(down.code, 12)
    assert.match(down.stderr, /H2K_DAEMON_NOT_RUNNING/)
    // A job that had finished before the stream opened: its last event, at once, and the command ends.
    assert.equal(watchedDone.code, 0, watchedDone.stderr)
    assert.match(watchedDone.stdout, new RegExp(`^${TIME}  job\\.completed\\s+${one!.id}  cli-one  [\\d.]+ s → /\\S+\n$`))
    assert.equal(watchedSkipped.code, 0, watchedSkipped.stderr)
    const last = JSON.parse(watchedSkipped.stdout)
    assert.deepEqual([last.id, last.event, last.data.job_id, last.data.parent_job_id], [null, 'job.skipped', child!.id, bad!.id])
  })

  it('exercised every operation openapi.yaml documents (but the schedules)', () => {
    const missing = documentedOperations().filter((op) => !op.includes('/schedules') && !api.covered.has(op))
    assert.deepEqual(missing, [])
  })

  it('closing the daemon ends open event streams; the token is never logged', async () => {
    const stream = await api.events()
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    await until('the stream ended', () => stream.ended, 5000)
    assert.ok(!d.log().includes(TOKEN))
    const bad = d.log().split('\n').filter((l) => /log-tap-failed|api:failed|http:handler-failed/.test(l))
    assert.deepEqual(bad, [], 'every job log line was stored; no handler failed')
  })
})

describe('daemon: REST API limits (rate limit, stream cap)', function () {
  this.timeout(60_000)
  const suite = daemonSuite('h2k-api-limits-')

  it('429 with Retry-After beyond the burst, per token; health is not limited; at most max_event_streams streams', async () => {
    const s = setup(join(suite.dir, 'limits'), {max_event_streams: 1, rate_limit: {burst: 4, requests_per_minute: 6}})
    const d = await startDaemon(['--config', s.config, '--output-dir', s.out])
    suite.daemons.push(d)
    const api = new ApiSession(await apiPort(d), TOKEN)
    const stream = await api.events()
    assert.equal(stream.status, 200)
    const second = await api.call('GET', '/api/v1/events')
    assert.equal(second.status, 503, 'one stream at most')
    // The stream and the refused second stream took two of the burst of 4.
    for (let i = 0; i < 2; i++) assert.equal((await api.call('GET', '/api/v1/jobs')).status, 200)
    const limited = await api.call('GET', '/api/v1/jobs')
    assert.equal(limited.status, 429)
    const retryAfter = Number(limited.headers['retry-after'])
    assert.ok(retryAfter >= 1 && retryAfter <= 10, String(limited.headers['retry-after']))
    assert.equal((await api.call('POST', '/api/v1/jobs', {body: {input: join(s.disks, 'a.raw')}})).status, 429)
    assert.equal((await api.call('GET', '/api/v1/health')).status, 200, 'liveness is never limited')
    assert.equal(storeJobs(s.out).length, 0)
    stream.close()
  })

  it('refuses to start bound beyond loopback without a token, or with a short one', async () => {
    const base = join(suite.dir, 'open')
    const s = setup(base, {address: '0.0.0.0'})
    writeFileSync(s.config, `command: daemon\nwatch_dir: ${join(base, 'queue')}\noutput_dir: ${s.out}\napi: {enabled: true, port: 0, address: 0.0.0.0}\n`)
    const run = await runCli(['daemon', '--config', s.config, '--output-dir', s.out])
    assert.equal(run.code, 2, run.stderr)
    assert.match(run.stderr, /api\.address 0\.0\.0\.0 is beyond loopback, and no api\.token is set/)
    writeFileSync(s.tokenFile, 'short\n', {mode: 0o600})
    writeFileSync(s.config, `command: daemon\nwatch_dir: ${join(base, 'queue')}\noutput_dir: ${s.out}\napi: {enabled: true, port: 0, token_file: ${s.tokenFile}}\n`)
    const short = await runCli(['daemon', '--config', s.config, '--output-dir', s.out])
    assert.equal(short.code, 2, short.stderr)
    assert.match(short.stderr, /api\.token \(from file\) is shorter than 16 characters/)
  })
})
