import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {jobOf, type RunningDaemon, startDaemon, today, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {parseExposition, promtoolCheck, rawExchange, request} from '../helpers/http-scrape.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {version: string}).version

/** A daemon config with the HTTP listener; `port: 0` picks a free port, read back from the http:listening line. */
function writeConfig(base: string, metrics: Record<string, unknown>, more = ''): {config: string; watch: string; out: string} {
  const watch = join(base, 'queue')
  const out = join(base, 'out')
  execFileSync('mkdir', ['-p', watch])
  const config = join(base, 'daemon.yaml')
  writeFileSync(config, `command: daemon\nwatch_dir: ${watch}\noutput_dir: ${out}\nverbose: 3\nmetrics: ${JSON.stringify(metrics)}\n${more}`)
  return {config, out, watch}
}

/** Scrape until `ready` holds for the samples (events reach the metrics a moment after the store records them). */
async function scrapeUntil(port: number, what: string, ready: (samples: Map<string, number>) => boolean): Promise<{body: string; contentType: string; samples: Map<string, number>}> {
  for (let i = 0; ; i++) {
    const answer = await request(port, '/metrics')
    const samples = parseExposition(answer.body)
    if (ready(samples)) return {body: answer.body, contentType: String(answer.headers['content-type']), samples}
    if (i === 100) throw new Error(`metrics never showed ${what}:\n${answer.body}`)
    await sleep(50)
  }
}

async function listeningPort(d: RunningDaemon): Promise<number> {
  const line = await until('http:listening', () => /http:listening address=\S+ auth=.* port=(\d+)/.exec(d.stderr()) ?? undefined, 10_000, d)
  return Number(line[1])
}

/** The metrics HTTP listener of a real daemon process: scrapes, health, readiness, limits, token. */
describe('daemon: HTTP listener (Prometheus metrics, health, readiness)', function () {
  this.timeout(60_000)
  const suite = daemonSuite('h2k-http-')
  const {daemons} = suite

  it('scrapes counters, histograms and gauges through a retry, a success and a failure; promtool passes; health, readiness, request ids, limits', async () => {
    const base = join(suite.dir, 'scrape')
    // jitter: none: the retry comes 2 s later, not anywhere in [0, 2 s]; the scrape counts it as waiting.
    const {config, out, watch} = writeConfig(base, {enabled: true, port: 0}, 'retry_policy: {max_retries: 3, retry_delay: 2, backoff_multiplier: 2, jitter: none}\n')
    // A file where the day's output directory should be: writing the output fails (H2K_OUTPUT_FAILED, retryable).
    execFileSync('mkdir', ['-p', out])
    const blocker = join(out, today())
    writeFileSync(blocker, 'in the way')
    const d = await startDaemon(['--config', config, '--output-dir', out])
    daemons.push(d)
    const port = await listeningPort(d)
    assert.match(d.stderr(), /http:listening address=127\.0\.0\.1 auth=none/)

    // One real disk (retried once the output cannot be written), one text file named .vmdk that no loader recognises.
    const raw = makePatternedRaw(join(base, 'alpha.raw'), 4 * 1024 * 1024, [{length: 65_536, offset: 0, pattern: 0x5a}])
    renameSync(raw, join(watch, 'alpha.raw'))
    await until('alpha waiting for a retry', () => jobOf(out, 'alpha.raw', 'retry_wait'), 30_000, d)
    const waiting = await scrapeUntil(port, 'the retry', (s) => s.get('hyper2kvm_retry_attempts_total') === 1)
    assert.equal(waiting.samples.get('hyper2kvm_errors_total{code="H2K_OUTPUT_FAILED"}'), 1)
    assert.equal(waiting.samples.get('hyper2kvm_retry_waiting_jobs'), 1)
    assert.equal(waiting.samples.get('hyper2kvm_queued_jobs'), 1, 'a job waiting for its retry is queued')
    assert.equal(waiting.samples.get('hyper2kvm_jobs_total{status="succeeded"}'), 0)
    execFileSync('rm', [blocker])
    const alpha = await until('alpha converted', () => jobOf(out, 'alpha.raw', 'succeeded'), 30_000, d)
    writeFileSync(join(watch, 'bad.vmdk'), 'this is not a disk\n')
    await until('bad failed', () => jobOf(out, 'bad.vmdk', 'failed'), 30_000, d)

    // The outcome is counted when the job's event goes out; it leaves the pool a moment later (its claim settles first).
    const {body, contentType, samples} = await scrapeUntil(port, 'both outcomes, pool empty', (s) => s.get('hyper2kvm_jobs_total{status="failed"}') === 1 && s.get('hyper2kvm_jobs_total{status="succeeded"}') === 1 && s.get('hyper2kvm_active_jobs') === 0)
    assert.match(contentType, /^text\/plain; version=0\.0\.4/)
    const value = (key: string) => {
      assert.ok(samples.has(key), `${key} is exposed`)
      return samples.get(key)!
    }
    assert.equal(value('hyper2kvm_retry_attempts_total'), alpha.attempts - 1)
    assert.equal(value('hyper2kvm_errors_total{code="H2K_OUTPUT_FAILED"}'), alpha.attempts - 1)
    assert.equal(value('hyper2kvm_retry_waiting_jobs'), 0)
    assert.equal(value('hyper2kvm_processed_total'), 1)
    assert.equal(value('hyper2kvm_failed_total'), 1)
    assert.equal(value('hyper2kvm_success_rate'), 50)
    assert.ok(value('hyper2kvm_avg_processing_time_seconds') > 0)
    assert.equal(value('hyper2kvm_jobs_total{status="duplicate"}'), 0)
    assert.equal(value('hyper2kvm_job_duration_seconds_count{status="succeeded"}'), 1)
    assert.equal(value('hyper2kvm_job_duration_seconds_count{status="failed"}'), 1)
    assert.ok(value('hyper2kvm_job_duration_seconds_sum{status="succeeded"}') > 0)
    assert.equal(value('hyper2kvm_job_duration_seconds_bucket{le="+Inf",status="succeeded"}'), 1)
    assert.equal(value('hyper2kvm_job_duration_seconds_bucket{le="28800",status="failed"}'), 1)
    assert.equal(value('hyper2kvm_bytes_converted_total'), 4 * 1024 * 1024)
    assert.ok(value('hyper2kvm_output_bytes_total') > 0)
    assert.equal(value('hyper2kvm_errors_total{code="H2K_INPUT_UNRECOGNIZED"}'), 1)
    assert.equal(value('hyper2kvm_duplicates_total'), 0)
    assert.equal(value('hyper2kvm_stage_duration_seconds_count{phase="convert",stage="converter:qemu-img",status="ok"}'), 1)
    assert.equal(value('hyper2kvm_active_jobs'), 0)
    assert.equal(value('hyper2kvm_queued_jobs'), 0)
    assert.equal(value('hyper2kvm_queue_depth'), 0)
    assert.equal(value('hyper2kvm_pending_files'), 0)
    assert.equal(value('hyper2kvm_max_concurrent_jobs'), 3, 'the default pool size is the seed\'s (3)')
    assert.equal(value('hyper2kvm_daemon_state{state="RUNNING"}'), 1)
    assert.equal(value('hyper2kvm_daemon_state{state="PAUSED"}'), 0)
    assert.equal(value(`hyper2kvm_build_info{version="${VERSION}"}`), 1)
    assert.ok(value('hyper2kvm_process_resident_memory_bytes') > 0, 'process metrics, prefixed')
    // No label carries a file name: cardinality stays bounded, and dropped names never reach a scrape.
    assert.doesNotMatch(body, /alpha|bad\.vmdk/)
    const lint = promtoolCheck(body)
    assert.ok(lint.ok, `promtool check metrics: ${lint.output}`)
    assert.equal(lint.output, '')
    const api = await request(port, '/api/v1/metrics')
    assert.equal(api.status, 200)
    assert.equal(parseExposition(api.body).get('hyper2kvm_jobs_total{status="succeeded"}'), 1)
    assert.ok(parseExposition(api.body).get('hyper2kvm_http_requests_total{route="metrics",status="200"}')! >= 1, 'requests are counted by route name')

    // Liveness and readiness; readiness follows pause/resume.
    const health = await request(port, '/api/v1/health')
    assert.equal(health.status, 200)
    const live = JSON.parse(health.body) as Record<string, unknown>
    assert.deepEqual(Object.keys(live).sort(), ['state', 'status', 'uptime_seconds', 'version'])
    assert.equal(live.status, 'ok')
    assert.equal(live.version, VERSION)
    assert.equal(live.state, 'RUNNING')
    assert.equal(typeof live.uptime_seconds, 'number')
    const ready = await request(port, '/api/v1/ready')
    assert.equal(ready.status, 200, ready.body)
    assert.deepEqual((JSON.parse(ready.body) as {checks: Array<{name: string; ok: boolean}>}).checks.map((c) => [c.name, c.ok]), [['store', true], ['directories', true], ['accepting', true]])
    assert.equal((await runCli(['ctl', 'pause', '--output-dir', out])).code, 0)
    const paused = await request(port, '/api/v1/ready')
    assert.equal(paused.status, 503)
    const pausedBody = JSON.parse(paused.body) as {status: string; state: string; checks: Array<{name: string; ok: boolean; detail?: string}>}
    assert.equal(pausedBody.status, 'not ready')
    assert.deepEqual(pausedBody.checks.find((c) => c.name === 'accepting'), {detail: 'paused', name: 'accepting', ok: false})
    assert.equal(parseExposition((await request(port, '/metrics')).body).get('hyper2kvm_daemon_state{state="PAUSED"}'), 1)
    assert.equal((await request(port, '/api/v1/health')).status, 200, 'a paused daemon is alive')
    assert.equal((await runCli(['ctl', 'resume', '--output-dir', out])).code, 0)
    assert.equal((await request(port, '/api/v1/ready')).status, 200)

    // Request ids: a sane one is echoed and logged; an insane one is replaced.
    const traced = await request(port, '/api/v1/health', {headers: {'X-Request-Id': 'trace-42.abc'}})
    assert.equal(traced.headers['x-request-id'], 'trace-42.abc')
    await until('the http:request line', () => /DEBUG http:request duration_ms=[\d.]+ method=GET path=\/api\/v1\/health request_id=trace-42\.abc route=health status=200/.test(d.stderr()), 5000, d)
    const insane = await request(port, '/api/v1/health', {headers: {'X-Request-Id': `x${'y'.repeat(300)}`}})
    assert.match(String(insane.headers['x-request-id']), /^req-[0-9a-f-]{36}$/)
    const odd = await request(port, '/api/v1/health', {headers: {'X-Request-Id': 'a"b<script>'}})
    assert.match(String(odd.headers['x-request-id']), /^req-[0-9a-f-]{36}$/)

    // Errors are JSON with the request id; no body is accepted on these routes.
    const missing = await request(port, '/api/v1/nothing')
    assert.equal(missing.status, 404)
    assert.equal((JSON.parse(missing.body) as {error: {request_id: string}}).error.request_id, missing.headers['x-request-id'])
    const post = await request(port, '/metrics', {method: 'POST'})
    assert.equal(post.status, 405)
    assert.equal(post.headers.allow, 'GET, HEAD')
    const withBody = await request(port, '/metrics', {body: 'x=1', headers: {'Content-Length': '3', 'Content-Type': 'text/plain'}})
    assert.equal(withBody.status, 413)
    assert.equal(withBody.headers.connection, 'close')
    assert.equal((await request(port, '/api/v1/health', {body: 'x=1', headers: {'Transfer-Encoding': 'chunked'}})).status, 413)
    const badLength = await request(port, '/metrics', {headers: {'Content-Length': 'abc'}})
    assert.equal(badLength.status, 400)
    // Requests no client library sends: an invalid absolute-form target, oversize headers. Answered, never fatal.
    assert.match(await rawExchange(port, 'GET http://[/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 [^]*"The request target is not a valid URL\."/)
    assert.match(await rawExchange(port, `GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /)
    assert.equal(d.child.exitCode, null)
    const head = await request(port, '/api/v1/health', {method: 'HEAD'})
    assert.equal(head.status, 200)
    assert.equal(head.body, '')

    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    await assert.rejects(request(port, '/api/v1/health'), /ECONNREFUSED/, 'the listener is closed at stop')
  })

  it('refuses to start bound beyond loopback without a token (H2K_USAGE)', async () => {
    const {config, out} = writeConfig(join(suite.dir, 'open'), {address: '0.0.0.0', enabled: true, port: 0})
    const run = await runCli(['daemon', '--config', config, '--output-dir', out])
    assert.equal(run.code, 2, run.stderr)
    assert.match(run.stderr, /H2K_USAGE/)
    assert.match(run.stderr, /metrics\.address 0\.0\.0\.0 is beyond loopback, and no metrics\.token is set/)
    assert.match(run.stderr, /metrics\.token_file/)
  })

  it('with a token: 401 (WWW-Authenticate) without it or with a wrong one, 200 with it; liveness stays open; the token is never logged', async () => {
    const base = join(suite.dir, 'token')
    execFileSync('mkdir', ['-p', base])
    const token = 'b3f1c2d4e5f60718293a4b5c6d7e8f90'
    const tokenFile = join(base, 'metrics.token')
    writeFileSync(tokenFile, `${token}\n`, {mode: 0o600})
    const {config, out} = writeConfig(base, {address: '0.0.0.0', enabled: true, port: 0, token_file: tokenFile})
    const d = await startDaemon(['--config', config, '--output-dir', out])
    daemons.push(d)
    const port = await listeningPort(d)
    assert.match(d.stderr(), /http:listening address=0\.0\.0\.0 auth="bearer \(file\)"/)
    const attempts: Array<Record<string, string>> = [{}, {Authorization: `Bearer ${token.slice(0, -1)}x`}, {Authorization: `Basic ${token}`}, {Authorization: 'Bearer '}]
    for (const headers of attempts) {
      const refused = await request(port, '/metrics', {headers})
      assert.equal(refused.status, 401, JSON.stringify(headers))
      assert.equal(refused.headers['www-authenticate'], 'Bearer realm="hyper2kvm"')
      assert.doesNotMatch(refused.body, /hyper2kvm_/)
    }
    assert.equal((await request(port, '/api/v1/ready')).status, 401)
    const allowed = await request(port, '/metrics', {headers: {Authorization: `Bearer ${token}`}})
    assert.equal(allowed.status, 200)
    assert.ok(parseExposition(allowed.body).has('hyper2kvm_active_jobs'))
    assert.equal((await request(port, '/api/v1/ready', {headers: {Authorization: `bearer ${token}`}})).status, 200)
    assert.equal((await request(port, '/api/v1/health')).status, 200, 'liveness needs no token')
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    assert.ok(!d.stderr().includes(token), 'the token is not in the log')
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600)
  })

  it('a port already in use fails the start with H2K_LISTEN_FAILED', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as {port: number}).port
    try {
      const {config, out} = writeConfig(join(suite.dir, 'taken'), {enabled: true, port})
      const run = await runCli(['daemon', '--config', config, '--output-dir', out])
      assert.equal(run.code, 12, run.stderr)
      assert.match(run.stderr, /H2K_LISTEN_FAILED/)
      assert.match(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use`))
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
  })
})
