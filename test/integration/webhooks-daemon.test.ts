import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import Database from 'better-sqlite3'

import {ApiSession} from '../helpers/api-session.js'
import {jobOf, jobs, startDaemon, today, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {filesContaining} from '../helpers/secret-leaks.js'
import {type ReceivedRequest, WebhookReceiver} from '../helpers/webhook-receiver.js'

const SECRET = 'lifecycle-secret-3f9a61c2'
const TOKEN = 'hook-bearer-8d04e7'

function outbox(out: string): Array<{id: string; channel: string; event: string; status: string; attempts: number}> {
  const db = new Database(join(out, '.daemon', 'jobs.db'), {readonly: true})
  try {
    return db.prepare('SELECT id, channel, event, status, attempts FROM notification_outbox ORDER BY rowid').all() as Array<{id: string; channel: string; event: string; status: string; attempts: number}>
  } finally {
    db.close()
  }
}

/** Polls GET /api/v1/jobs/{id} until `ready(job)`. */
async function pollJob(api: ApiSession, id: string, ready: (job: Record<string, any>) => boolean): Promise<Record<string, any>> {
  const end = Date.now() + 10_000
  for (;;) {
    const job = (await api.call('GET', `/api/v1/jobs/${id}`)).body.job as Record<string, any>
    if (ready(job)) return job
    assert.ok(Date.now() < end, `job ${id}: ${JSON.stringify(job)}`)
    await sleep(50)
  }
}

/** Lifecycle webhooks from a real daemon to a real HTTP receiver on loopback (no notifications configured). */
describe('daemon lifecycle webhooks: events, payload, signature, filters, retries', function () {
  this.timeout(90_000)
  const suite = daemonSuite('h2k-webhooks-')
  const {daemons} = suite
  let hooks: WebhookReceiver
  beforeEach(async () => {
    hooks = await WebhookReceiver.start({'/all': SECRET})
  })
  afterEach(async () => {
    await hooks.close()
  })

  const setup = (name: string, webhooks: string, extra = 'retry_policy:\n  enabled: false\n') => {
    const base = join(suite.dir, name)
    mkdirSync(join(base, 'queue'), {recursive: true})
    writeFileSync(join(base, 'all.secret'), `${SECRET}\n`, {mode: 0o600})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: queue\noutput_dir: out\nlog_file: log/daemon.log\nlog_level: debug\nverbose: 2\nfix: false\n${extra}webhooks:\n${webhooks}`)
    return {base, config, out: join(base, 'out'), watch: join(base, 'queue')}
  }
  const hook = (path: string, extra = '') => `  - url: ${hooks.url(path)}\n${extra}`
  const events = (path: string) => hooks.on(path).map((r) => r.json.event as string)

  it('a converted disk: job.created, job.started, job.completed in order, signed, with the seed payload and ours; filters, disabled hooks, a receiver failing twice', async () => {
    // The flaky receiver answers 500 twice, then 200.
    hooks.reply = ({path}) => ({status: path === '/flaky' && hooks.on('/flaky').length < 2 ? 500 : 200})
    const t = setup(
      't1',
      hook('/all', `    secret_file: all.secret\n    headers:\n      X-Custom: hello\n      Authorization: "Bearer ${TOKEN}"\n    timeout: 10s\n`) +
        hook('/completed', '    events: [job.completed]\n') +
        hook('/flaky', '    events: [job.completed]\n    retry: 3\n    timeout: 5\n') +
        hook('/off', '    enabled: false\n'),
    )
    const d = await startDaemon(['--config', t.config], t.out)
    daemons.push(d)
    const raw = makePatternedRaw(join(t.base, 'source.raw'))
    execFileSync('cp', ['--sparse=always', raw, join(t.watch, 'tiny.raw')])
    await until('job.completed on /all', () => events('/all').includes('job.completed'), 30_000, d)
    await until('job.completed on /flaky, third attempt', () => hooks.on('/flaky').some((r) => r.status === 200), 20_000, d)
    const job = jobOf(t.out, 'tiny.raw', 'succeeded')!
    assert.ok(job, 'the job succeeded')

    // Order, and nothing but lifecycle events.
    const all = hooks.on('/all')
    const sequence = events('/all').filter((e) => e !== 'job.progress')
    assert.deepEqual(sequence, ['job.created', 'job.started', 'job.completed'])
    assert.ok(events('/all').indexOf('job.started') < events('/all').indexOf('job.completed'))

    // job.progress, throttled (default progress_interval 30 s): the daemon reported progress once per stage
    // that ran (the job's report lists them); the hook got the first, and no more than one per 30 s of the run.
    const ran = (JSON.parse((job as typeof job & {result_json: string}).result_json) as {stages: Array<{status: string}>}).stages.filter((st) => st.status !== 'skipped').length
    const progress = all.filter((r) => r.json.event === 'job.progress')
    const at = (e: string) => Date.parse(all.find((r) => r.json.event === e)!.json.timestamp)
    const allowed = 1 + Math.floor((at('job.completed') - at('job.started')) / 30_000)
    assert.ok(progress.length >= 1, `a progress was delivered: ${events('/all').join(' ')}`)
    assert.ok(progress.length <= allowed, `${progress.length} progress deliveries, the throttle allows ${allowed}`)
    assert.ok(ran > progress.length, `${ran} stages ran (each a progress event), ${progress.length} delivered: the throttle held some back`)
    assert.deepEqual([progress[0]!.json.data.status, progress[0]!.json.job.status, typeof progress[0]!.json.data.stage], ['running', 'running', 'string'])
    assert.ok(events('/all').indexOf('job.started') < events('/all').indexOf('job.progress'))

    for (const r of all) {
      assert.equal(r.signatureValid, true, `${r.json.event}: the receiver verified the HMAC signature`)
      assert.equal(r.headers['x-custom'], 'hello')
      assert.equal(r.headers.authorization, `Bearer ${TOKEN}`)
      assert.equal(r.headers['x-hyper2kvm-event'], r.json.event)
      assert.equal(r.headers['x-hyper2kvm-delivery'], r.json.delivery_id)
      assert.match(r.json.delivery_id, /^[0-9a-f-]{36}$/)
      assert.ok(Math.abs(Date.parse(r.json.timestamp) - Date.now()) < 60_000)
      assert.deepEqual([r.json.data.job_id, r.json.data.job_name, r.json.data.vm_path], [job.id, job.name, 'tiny.raw'])
      assert.deepEqual([r.json.job.id, r.json.job.origin, r.json.job.file], [job.id, 'drop', 'tiny.raw'])
    }
    const [created, started, completed] = ['job.created', 'job.started', 'job.completed'].map((e) => all.find((r) => r.json.event === e)!.json)
    assert.deepEqual([created.data.status, created.job.status, created.job.attempt], ['queued', 'queued', null])
    assert.deepEqual([started.data.attempt, started.job.status], [1, 'running'])
    assert.equal(completed.data.output_path, job.output_path)
    assert.ok(existsSync(completed.data.output_path))
    assert.ok(completed.data.duration_seconds > 0 && completed.data.duration_seconds < 60)
    assert.ok(completed.data.output_size_bytes > 0)
    assert.deepEqual([completed.job.status, completed.job.output_path, completed.job.error], ['succeeded', job.output_path, null])
    assert.equal(new Set(all.map((r) => r.json.delivery_id)).size, all.length, 'one delivery id per message')

    // Filters: only job.completed; the disabled hook nothing. (Each channel delivers on its own: waited for.)
    await until('job.completed on /completed', () => events('/completed').length > 0, 10_000, d)
    assert.deepEqual(events('/completed'), ['job.completed'])
    assert.equal(hooks.on('/completed')[0]!.signatureValid, undefined)
    assert.equal(hooks.on('/completed')[0]!.headers['x-hyper2kvm-signature'], undefined, 'no secret: not signed')

    // 500, 500, 200: one message, three attempts, one delivery id.
    const flaky = hooks.on('/flaky')
    assert.deepEqual(flaky.map((r) => r.status), [500, 500, 200])
    assert.equal(new Set(flaky.map((r) => r.headers['x-hyper2kvm-delivery'])).size, 1)
    assert.equal(new Set(flaky.map((r) => r.json.delivery_id)).size, 1)
    await until('outbox settled', () => outbox(t.out).every((r) => r.status === 'delivered'), 10_000, d)
    const flakyRow = outbox(t.out).find((r) => r.id === flaky[0]!.json.delivery_id)!
    assert.deepEqual([flakyRow.status, flakyRow.attempts], ['delivered', 3])

    await sleep(300)
    assert.equal(hooks.on('/off').length, 0, 'a disabled hook gets nothing')
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    assert.match(d.log(), /WARN notify:retry .*channel="?lifecycle webhook 127\.0\.0\.1:\d+/)
    assert.match(d.log(), /INFO webhook:disabled .*count=1/)
    for (const needle of [SECRET, TOKEN]) {
      assert.ok(!d.log().includes(needle), `${needle} in the daemon log`)
      assert.deepEqual(filesContaining(join(t.base, 'log'), needle), [], `${needle} in the log file`)
      assert.deepEqual(filesContaining(t.out, needle), [], `${needle} in the output dir (store, outbox)`)
    }

    // `notify test` (no notifications: configured) tests the lifecycle hooks: every enabled one gets a signed
    // `test` event with its headers, whatever its `events` filter; the disabled one nothing.
    const before = hooks.requests.length
    const tested = await runCli(['notify', 'test', '--config', t.config, '--json'])
    assert.equal(tested.code, 0, tested.stdout + tested.stderr)
    assert.deepEqual(tested.json.channels.map((c: {channel: string; ok: boolean}) => [c.channel.replace(/:\d+$/, ''), c.ok]), Array(3).fill(['lifecycle webhook 127.0.0.1', true]))
    const sent = hooks.requests.slice(before)
    assert.deepEqual(sent.map((r) => r.path).sort(), ['/all', '/completed', '/flaky'])
    assert.ok(sent.every((r) => r.json.event === 'test' && r.headers['x-hyper2kvm-event'] === 'test' && r.json.delivery_id === r.headers['x-hyper2kvm-delivery']))
    const probe = sent.find((r) => r.path === '/all')!
    assert.deepEqual([probe.signatureValid, probe.headers['x-custom'], probe.headers.authorization], [true, 'hello', `Bearer ${TOKEN}`])
    assert.match(probe.json.data.message, /lifecycle webhook is configured correctly/)
    for (const needle of [SECRET, TOKEN]) assert.ok(!(tested.stdout + tested.stderr).includes(needle), needle)
  })

  it('failures: a corrupt image is job.failed, not retrying, not exhausted; a retryable one is retrying, then exhausted and job.dead', async () => {
    // Notifications too: one engine and outbox serves both, each producer's messages reach its own channels only.
    const notifications = `notifications:\n  enabled: true\n  webhooks:\n    - url: ${hooks.url('/notify')}\n      type: generic\n`
    const t = setup('t2', hook('/all', '    secret_file: all.secret\n') + hook('/dead', '    events: [job.dead]\n'), `retry_policy:\n  max_retries: 1\n  retry_delay: 0.2\n  backoff_multiplier: 1\n${notifications}`)
    const d = await startDaemon(['--config', t.config], t.out)
    daemons.push(d)
    writeFileSync(join(t.watch, 'bad.vmdk'), 'test\n')
    const failedOf = (file: string) => hooks.on('/all').filter((r: ReceivedRequest) => r.json.event === 'job.failed' && r.json.data.vm_path === file).map((r) => r.json)
    await until('bad.vmdk failed', () => failedOf('bad.vmdk').length > 0, 30_000, d)
    const bad = failedOf('bad.vmdk')[0]
    assert.deepEqual([bad.data.retrying, bad.data.exhausted, bad.data.error_code, bad.data.permanent], [false, false, 'H2K_INPUT_UNRECOGNIZED', true])
    assert.deepEqual([bad.job.status, bad.job.error.code, bad.job.error.permanent], ['failed', 'H2K_INPUT_UNRECOGNIZED', true])
    assert.equal(typeof bad.job.error.message, 'string')

    // A file where the day's output directory should be: writing fails (H2K_OUTPUT_FAILED, retryable).
    rmSync(join(t.out, today()), {force: true, recursive: true})
    writeFileSync(join(t.out, today()), 'in the way')
    const raw = makePatternedRaw(join(t.base, 'source.raw'))
    execFileSync('cp', ['--sparse=always', raw, join(t.watch, 'eps.raw')])
    await until('eps dead', () => hooks.on('/dead').length > 0, 30_000, d)
    await until('eps failed twice', () => failedOf('eps.raw').length === 2, 10_000, d)
    // Each channel delivers on its own: /dead may hear of the death before /all does.
    await until('job.dead on /all', () => events('/all').includes('job.dead'), 10_000, d)
    const [retrying, exhausted] = failedOf('eps.raw')
    assert.deepEqual([retrying.data.retrying, retrying.data.exhausted, retrying.data.error_code, retrying.job.status], [true, false, 'H2K_OUTPUT_FAILED', 'retry_wait'])
    assert.ok(Date.parse(retrying.data.next_retry_at) > 0)
    assert.deepEqual([exhausted.data.retrying, exhausted.data.exhausted, exhausted.data.attempt], [false, true, 2])
    // Out of retries the job is dead in the store: the event says so too.
    assert.deepEqual([exhausted.data.status, exhausted.job.status, jobOf(t.out, 'eps.raw')!.status], ['dead', 'dead', 'dead'])
    const dead = hooks.on('/dead')[0]!.json
    assert.deepEqual([dead.event, dead.data.exhausted, dead.job.status, dead.data.error_code], ['job.dead', true, 'dead', 'H2K_OUTPUT_FAILED'])
    assert.deepEqual(events('/dead'), ['job.dead'], 'the filter let only job.dead through')
    const order = events('/all').filter((e) => e !== 'job.progress')
    assert.ok(order.lastIndexOf('job.failed') < order.indexOf('job.dead'), order.join(' '))
    assert.ok(hooks.on('/all').every((r) => r.signatureValid === true))
    await until('the failure notifications', () => hooks.on('/notify').length >= 3, 10_000, d)
    assert.ok(events('/notify').every((e) => e === 'conversion_failure'), events('/notify').join(' '))
    assert.ok(events('/all').every((e) => e.startsWith('job.')), events('/all').join(' '))
    assert.match(d.log(), /INFO notify:start .*channels="generic webhook 127\.0\.0\.1:\d+, lifecycle webhook 127\.0\.0\.1:\d+, lifecycle webhook/)
  })

  it('job.cancelled (API cancel of a job its window holds), job.skipped (a batch whose parent fails), schedule.missed (catch_up: none), end to end', async () => {
    const inputs = join(suite.dir, 't3', 'inputs')
    mkdirSync(inputs, {recursive: true})
    const disk = makePatternedRaw(join(inputs, 'disk.raw'))
    writeFileSync(join(inputs, 'bad.vmdk'), 'test\n')
    const schedule = {catch_up: 'none', cron: '0 3 * * *', id: 'nightly', job_template: {input: disk}, name: 'Nightly wave', timezone: 'UTC'}
    const t = setup('t3', hook('/all', '    secret_file: all.secret\n'), `retry_policy:\n  enabled: false\nallowed_input_dirs: [${inputs}]\napi:\n  enabled: true\n  port: 0\nschedules:\n  - ${JSON.stringify(schedule)}\n`)
    const d = await startDaemon(['--config', t.config], t.out)
    daemons.push(d)
    // The daemon logs to its log_file: the API's port is read there.
    const port = await until('api listening', () => /api:listening .*port=(\d+)/.exec(d.log())?.[1], 10_000, d)
    const api = new ApiSession(Number(port))
    const on = (event: string) => hooks.on('/all').filter((r) => r.json.event === event).map((r) => r.json)

    // Cancelled: an API job whose window (an hour, two hours from now) is closed stays queued; then cancelled.
    const hour = (new Date().getUTCHours() + 2) % 24
    const hours = `${String(hour).padStart(2, '0')}:00-${String(hour + 1).padStart(2, '0')}:00`
    const submitted = await api.call('POST', '/api/v1/jobs', {body: {input: disk, name: 'held', window: {hours, timezone: 'UTC'}}})
    assert.equal(submitted.status, 201, submitted.text)
    const held = submitted.body.jobs[0].id as string
    const waiting = await pollJob(api, held, (j) => j.wait_reason !== null)
    assert.deepEqual([waiting.status, /^outside window/.test(waiting.wait_reason)], ['queued', true])
    assert.equal((await api.call('POST', `/api/v1/jobs/${held}/cancel`, {body: {reason: 'wave moved'}})).status, 200)

    // Skipped: a batch whose parent is no disk at all (permanent failure): its dependent is skipped. (Over
    // the API: this daemon watches a drop directory for disks; batches are dropped in workflow mode.)
    const batch = await api.call('POST', '/api/v1/jobs', {body: {jobs: [{input: join(inputs, 'bad.vmdk'), name: 'parent'}, {depends_on: ['parent'], input: disk, name: 'child'}]}})
    assert.equal(batch.status, 201, batch.text)

    // Missed: the store says nightly was last due at 03:00 UTC (at least two minutes ago: late) and the host
    // slept through it; the reload re-arms the scheduler, which finds it missed.
    await until('schedules synced', () => d.log().includes('schedules:synced added=nightly'), 10_000, d)
    const night = new Date(Date.now() - 120_000)
    night.setUTCHours(3, 0, 0, 0)
    const due = night.getTime() > Date.now() - 120_000 ? night.getTime() - 24 * 3600_000 : night.getTime()
    const db = new Database(join(t.out, '.daemon', 'jobs.db'))
    try {
      db.prepare('UPDATE schedules SET next_run = ? WHERE id = ?').run(due, 'nightly')
    } finally {
      db.close()
    }
    d.child.kill('SIGHUP')

    await until('cancelled, skipped and missed delivered', () => on('job.cancelled').length > 0 && on('job.skipped').length > 0 && on('schedule.missed').length > 0, 30_000, d)
    const [cancelled] = on('job.cancelled')
    assert.deepEqual([cancelled.data.job_id, cancelled.data.status, cancelled.data.reason, cancelled.job.status, cancelled.job.origin], [held, 'cancelled', 'wave moved', 'cancelled', 'api'])
    const byName = Object.fromEntries(jobs(t.out).map((j) => [j.name, j]))
    assert.deepEqual([byName.parent!.status, byName.child!.status, byName.held!.status], ['failed', 'skipped', 'cancelled'])
    const [skipped] = on('job.skipped')
    assert.deepEqual([skipped.data.job_id, skipped.data.status, skipped.data.parent_job_id, skipped.data.reason, skipped.job.status], [byName.child!.id, 'skipped', byName.parent!.id, `dependency failed: ${byName.parent!.id}`, 'skipped'])
    const [missed] = on('schedule.missed')
    assert.deepEqual([missed.data.schedule_id, missed.data.schedule_name, missed.data.scheduled_for, missed.schedule], ['nightly', 'Nightly wave', new Date(due).toISOString(), {id: 'nightly', name: 'Nightly wave'}])
    assert.match(missed.data.reason, /catch_up: none/)
    assert.equal(on('schedule.missed').length, 1, 'one night missed')
    assert.equal(missed.job, undefined)
    assert.equal(jobs(t.out).filter((j) => j.name === 'disk').length, 0, 'catch_up none: nothing ran for the missed night')

    // Every one signed; the parent's failure told before its dependent's skip; nothing else ran.
    assert.ok(hooks.on('/all').every((r) => r.signatureValid === true))
    const order = events('/all')
    assert.ok(order.indexOf('job.failed') < order.indexOf('job.skipped'), order.join(' '))
    assert.equal(on('job.started').length, 1, 'only the parent started')
    assert.deepEqual(on('job.created').map((e) => e.data.retried), [false, false, false])
  })
})
