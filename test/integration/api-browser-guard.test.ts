import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {ApiSession, apiPort} from '../helpers/api-session.js'
import {type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {request} from '../helpers/http-scrape.js'

/** A window that is closed now (twelve hours away, one minute long, UTC): a job in it stays queued. */
function closedWindow(): {hours: string; timezone: string} {
  const h = String((new Date().getUTCHours() + 12) % 24).padStart(2, '0')
  return {hours: `${h}:00-${h}:01`, timezone: 'UTC'}
}

describe('the API refuses browsers it did not serve (DNS rebinding, cross-site), destructive routes want full ids, caps', function () {
  this.timeout(120_000)
  const suite = daemonSuite('h2k-browser-', {killAfter: 'all'})
  let d: RunningDaemon
  let api: ApiSession
  let port: number
  let metricsPort: number
  let disk: string
  let queued: string
  before(async () => {
    const disks = join(suite.dir, 'disks')
    mkdirSync(disks)
    mkdirSync(join(suite.dir, 'queue'))
    disk = join(disks, 'a.raw')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', disk, '1M'])
    const out = join(suite.dir, 'out')
    const config = join(suite.dir, 'daemon.yaml')
    // The default a browser could reach: loopback, no token.
    writeFileSync(config, `command: daemon\nwatch_dir: ${join(suite.dir, 'queue')}\noutput_dir: ${out}\nallowed_input_dirs: [${disks}]\nfix: false\nverbose: 3\nmetrics: {enabled: true, port: 0}\napi: ${JSON.stringify({enabled: true, port: 0, rate_limit: {burst: 5000, requests_per_minute: 60000}})}\n`)
    d = await startDaemon(['--config', config, '--output-dir', out])
    suite.daemons.push(d)
    port = await apiPort(d)
    metricsPort = Number((await until('http:listening', () => /http:listening address=\S+ auth=.* port=(\d+)/.exec(d.stderr()) ?? undefined, 10_000, d))[1])
    api = new ApiSession(port)
    const sub = await api.call('POST', '/api/v1/jobs', {body: {input: disk, window: closedWindow()}})
    assert.equal(sub.status, 201, sub.text)
    queued = sub.body.jobs[0].id
  })

  const status = async (id: string): Promise<string> => (await api.call('GET', `/api/v1/jobs/${id}`)).body.job.status

  it('a Host that is not an IP literal or localhost is refused (DNS rebinding), on the API and on /metrics', async () => {
    const body = JSON.stringify({input: disk})
    const submit = await request(port, '/api/v1/jobs', {body, headers: {'Content-Type': 'application/json', Host: `evil.example:${port}`, Origin: `http://evil.example:${port}`}, method: 'POST'})
    assert.equal(submit.status, 403, submit.body)
    assert.doesNotMatch(submit.body, /evil/, 'the refusal does not quote the header')
    assert.equal((await request(port, '/api/v1/jobs', {headers: {Host: 'evil.example'}})).status, 403)
    assert.equal((await request(metricsPort, '/metrics', {headers: {Host: 'evil.example'}})).status, 403)
    assert.equal((await api.call('GET', '/api/v1/jobs')).body.jobs.length, 1, 'nothing was submitted')
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'localhost']) {
      assert.equal((await request(port, '/api/v1/jobs', {headers: {Host: host}})).status, 200, host)
    }
    assert.equal((await request(metricsPort, '/metrics', {headers: {Host: `localhost:${metricsPort}`}})).status, 200)
  })

  it('a cross-site cancel (foreign Origin, Sec-Fetch-Site, or no Content-Type) is refused; the job stays queued', async () => {
    const path = `/api/v1/jobs/${queued}/cancel`
    assert.equal((await request(port, path, {headers: {Origin: 'https://evil.example'}, method: 'POST'})).status, 403)
    assert.equal((await request(port, path, {headers: {'Content-Type': 'application/json', Origin: 'null'}, method: 'POST'})).status, 403)
    assert.equal((await request(port, path, {headers: {'Content-Type': 'application/json', 'Sec-Fetch-Site': 'cross-site'}, method: 'POST'})).status, 403)
    const plain = await request(port, path, {method: 'POST'})
    assert.equal(plain.status, 415, 'a no-cors form/fetch POST carries no JSON Content-Type')
    assert.match(plain.body, /application\/json/)
    assert.equal((await request(port, path, {body: '', headers: {'Content-Length': '0', 'Content-Type': 'text/plain'}, method: 'POST'})).status, 415)
    assert.equal(await status(queued), 'queued')
    // The listener's own origin is fine.
    const own = await request(port, '/api/v1/jobs', {headers: {Origin: `http://127.0.0.1:${port}`}})
    assert.equal(own.status, 200)
  })

  it('cancel, retry and DELETE /dlq need the full id; "%25" and short prefixes are refused', async () => {
    for (const [method, path] of [['POST', `/api/v1/jobs/${queued.slice(0, 2)}/cancel`], ['POST', `/api/v1/jobs/${queued.slice(0, 7)}/retry`], ['DELETE', '/api/v1/dlq/%25'], ['POST', '/api/v1/dlq/%25/retry'], ['POST', '/api/v1/jobs/%25%25%25%25%25%25%25%25/cancel']] as const) {
      const answer = await api.call(method, path)
      assert.equal(answer.status, 404, `${method} ${path}: ${answer.text}`)
      assert.match(answer.body.error.message, /full id/)
    }
    assert.equal(await status(queued), 'queued')
    assert.equal((await api.call('GET', `/api/v1/jobs/${queued.slice(0, 3)}`)).status, 200, 'reading by a prefix stays possible')
    assert.equal((await api.call('POST', `/api/v1/jobs/${queued}/cancel`)).status, 200)
  })

  it('a batch of more than 1000 jobs is refused before it is planned', async () => {
    const answer = await api.call('POST', '/api/v1/jobs', {body: {jobs: Array.from({length: 1001}, () => ({input: disk}))}})
    assert.equal(answer.status, 400, answer.text)
    assert.match(answer.body.error.message, /at most 1000/)
  })

  it('at most 1000 schedules', async () => {
    for (let i = 0; i < 1000; i++) {
      const made = await api.call('POST', '/api/v1/schedules', {body: {cron: '0 0 1 1 *', id: `s${i}`, job_template: {input: disk}}})
      assert.equal(made.status, 201, made.text)
    }
    const refused = await api.call('POST', '/api/v1/schedules', {body: {cron: '0 0 1 1 *', id: 'one-too-many', job_template: {input: disk}}})
    assert.equal(refused.status, 409, refused.text)
    assert.match(refused.body.error.message, /at most 1000/)
  })
})
