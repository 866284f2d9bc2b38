import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import Database from 'better-sqlite3'
import {parse} from 'yaml'

import type {DaemonEvent, ErrorInfo, JobInfo} from '../../src/daemon/daemon-events.js'
import {DeliveryEngine} from '../../src/delivery/delivery-engine.js'
import {schemaValidator} from '../../src/jobs/schemas.js'
import {openOutbox} from '../helpers/outbox-file.js'
import {signedPost} from '../../src/delivery/signed-post.js'
import {testNotice} from '../../src/notify/notice.js'
import {WebhookChannel} from '../../src/notify/webhook-channel.js'
import {redactSecrets} from '../../src/secrets/redact.js'
import {LifecycleWebhookChannel} from '../../src/webhooks/lifecycle-channel.js'
import {LIFECYCLE_EVENTS, lifecycleBody, lifecycleEvent} from '../../src/webhooks/lifecycle-events.js'
import {ProgressThrottle} from '../../src/webhooks/progress-throttle.js'
import {WebhookProducer} from '../../src/webhooks/webhook-producer.js'
import {type LifecycleHookSettings, parseWebhooks, timeoutMsOf, type WebhookKeys} from '../../src/webhooks/webhook-settings.js'
import {until} from '../helpers/daemon-process.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {WebhookReceiver} from '../helpers/webhook-receiver.js'

const at = new Date('2026-03-08T07:59:59.500Z')
const job: JobInfo = {fileType: 'vmdk', filename: 'web\n01.vmdk', id: 'job-1', intakeId: 'job-1', name: 'web-01', origin: 'drop', sizeBytes: 1048576}
const retryable: ErrorInfo = {code: 'H2K_OUTPUT_FAILED', message: 'Cannot write the output', permanent: false, phase: 'convert'}
const permanent: ErrorInfo = {code: 'H2K_INPUT_UNRECOGNIZED', message: 'Not a disk image', permanent: true, phase: 'load'}

type Body = {event: string; timestamp: string; data: Record<string, any>; job?: Record<string, any>; schedule?: Record<string, any>}
/** The event and the webhook body built from it (the SSE `data:` is the body's `data`). */
const wire = (e: DaemonEvent) => {
  const out = lifecycleEvent(e)
  if (!out) return undefined
  const body = lifecycleBody(out) as Body
  assert.equal(body.data, out.data)
  return {body, event: out.event}
}

describe('lifecycle events: the one mapping from daemon events to wire events', () => {
  it('job events: names, statuses, the seed data keys and ours', () => {
    const created = wire({at, job, type: 'job:queued'})!
    assert.equal(created.event, 'job.created')
    assert.deepEqual(created.body.data, {job_id: 'job-1', job_name: 'web-01', retried: false, status: 'queued', vm_path: 'web\\n01.vmdk'}, 'a newline in a dropped name is escaped')
    assert.equal(created.body.timestamp, '2026-03-08T07:59:59.500Z')
    assert.equal(created.body.event, 'job.created')
    assert.deepEqual(created.body.job, {attempt: null, error: null, file: 'web\\n01.vmdk', file_type: 'vmdk', id: 'job-1', name: 'web-01', origin: 'drop', output_path: null, schedule_id: null, size_bytes: 1048576, status: 'queued'})

    const scheduled = wire({at, job: {...job, origin: 'schedule', scheduleId: 'nightly'}, type: 'job:queued'})!
    assert.deepEqual([scheduled.body.job!.origin, scheduled.body.job!.schedule_id], ['schedule', 'nightly'])

    const started = wire({at, attempt: 2, job, type: 'job:started'})!
    assert.deepEqual([started.event, started.body.job!.status, started.body.job!.attempt, started.body.data.attempt], ['job.started', 'running', 2, 2])

    const progress = wire({at, job, phase: 'convert', stage: 'convert:qemu-img', type: 'job:progress'})!
    assert.deepEqual([progress.event, progress.body.data.phase, progress.body.data.stage], ['job.progress', 'convert', 'convert:qemu-img'])

    const done = wire({at, attempt: 1, durationMs: 1234.567, job, maxRetries: 3, outputBytes: 4096, outputPath: '/out/2026-03-08/web-01', type: 'job:succeeded'})!
    assert.equal(done.event, 'job.completed')
    assert.deepEqual([done.body.data.duration_seconds, done.body.data.output_path, done.body.data.output_size_bytes], [1.23, '/out/2026-03-08/web-01', 4096])
    assert.deepEqual([done.body.job!.status, done.body.job!.output_path, done.body.job!.error], ['succeeded', '/out/2026-03-08/web-01', null])
  })

  it('job.failed says retrying (job:retry) or not, and exhausted only when retries ran out', () => {
    const retry = wire({at, attempt: 1, delayMs: 5000, error: retryable, job, maxRetries: 3, nextRetryAt: new Date(at.getTime() + 5000), type: 'job:retry'})!
    assert.equal(retry.event, 'job.failed')
    assert.deepEqual([retry.body.data.retrying, retry.body.data.exhausted, retry.body.data.next_retry_at, retry.body.job!.status], [true, false, '2026-03-08T08:00:04.500Z', 'retry_wait'])
    assert.deepEqual(retry.body.job!.error, {code: 'H2K_OUTPUT_FAILED', message: 'Cannot write the output', permanent: false, phase: 'convert'})

    const perm = wire({at, attempt: 1, durationMs: 10, error: permanent, job, maxRetries: 3, type: 'job:failed', retrying: false})!
    assert.deepEqual([perm.event, perm.body.data.retrying, perm.body.data.exhausted, perm.body.data.error_code, perm.body.job!.status], ['job.failed', false, false, 'H2K_INPUT_UNRECOGNIZED', 'failed'])

    const outOfRetries = wire({at, attempt: 4, durationMs: 10, error: retryable, job, maxRetries: 3, type: 'job:failed', retrying: false, exhausted: true})!
    assert.deepEqual([outOfRetries.body.data.retrying, outOfRetries.body.data.exhausted], [false, true])
    // The runner has the job dead (the DLQ) when it says exhausted: the event says what the store says.
    assert.deepEqual([outOfRetries.body.data.status, outOfRetries.body.job!.status], ['dead', 'dead'])
    assert.deepEqual([perm.body.data.status, perm.body.job!.status], ['failed', 'failed'], 'a permanent error is failed, not dead')
    const retriesOff = wire({at, attempt: 1, durationMs: 10, error: retryable, job, maxRetries: 0, type: 'job:failed', retrying: false})!
    assert.equal(retriesOff.body.data.exhausted, false)

    const dead = wire({at, attempts: 4, error: retryable, job, type: 'job:dead'})!
    assert.deepEqual([dead.event, dead.body.data.retrying, dead.body.data.exhausted, dead.body.job!.status, dead.body.job!.attempt], ['job.dead', undefined, true, 'dead', 4])
    assert.equal(lifecycleEvent({at, attempt: 1, durationMs: 1, error: retryable, job, maxRetries: 3, retrying: true, type: 'job:failed'}), undefined, 'a retrying job:failed is told by job:retry')
  })

  it('a job queued again by a retry is job.created with retried: true, never a second plain job.created', () => {
    const first = wire({at, job, type: 'job:queued'})!
    const again = wire({at, job, retried: true, type: 'job:queued'})!
    assert.deepEqual([first.event, first.body.data.retried], ['job.created', false])
    assert.deepEqual([again.event, again.body.data.retried, again.body.data.status, again.body.job!.status, again.body.job!.id], ['job.created', true, 'queued', 'queued', 'job-1'])
    // What a ticketing receiver does: one ticket per new job, however often it is retried.
    const tickets = [first, again, wire({at, job, retried: true, type: 'job:queued'})!].filter((w) => w.event === 'job.created' && w.body.data.retried !== true)
    assert.equal(tickets.length, 1)
    // The producer queues it like any other event (a hook filtering on job.created gets it, marked).
    const [queued] = new WebhookProducer([{enabled: true, headers: {}, id: 'h', maxAttempts: 1, progressIntervalMs: 1000, timeoutMs: 1000, url: 'http://127.0.0.1:9/h'}]).messagesFor({at, job, retried: true, type: 'job:queued'})
    assert.deepEqual([queued!.event, (queued!.payload as Body).data.retried], ['job.created', true])
  })

  it('cancelled, skipped, schedules; internal events are not lifecycle events', () => {
    const cancelled = wire({at, job, reason: 'by the API', type: 'job:cancelled'})!
    assert.deepEqual([cancelled.event, cancelled.body.data.reason, cancelled.body.job!.status], ['job.cancelled', 'by the API', 'cancelled'])
    const skipped = wire({at, job, parent: 'job-0', type: 'job:skipped'})!
    assert.deepEqual([skipped.event, skipped.body.data.parent_job_id, skipped.body.data.reason], ['job.skipped', 'job-0', 'dependency failed: job-0'])
    const fired = wire({at, jobIds: ['a', 'b'], manual: false, overrideWindow: false, schedule: {id: 'nightly', name: 'Nightly wave'}, scheduledFor: new Date('2026-03-08T02:00:00Z'), type: 'schedule:fired'})!
    assert.deepEqual(fired.body, {
      data: {job_ids: ['a', 'b'], manual: false, override_window: false, schedule_id: 'nightly', schedule_name: 'Nightly wave', scheduled_for: '2026-03-08T02:00:00.000Z'},
      event: 'schedule.fired',
      schedule: {id: 'nightly', name: 'Nightly wave'},
      timestamp: at.toISOString(),
    })
    const missed = wire({at, reason: 'daemon down', schedule: {id: 'nightly', name: 'Nightly wave'}, scheduledFor: new Date('2026-03-08T02:00:00Z'), type: 'schedule:missed'})!
    assert.deepEqual([missed.event, missed.body.data.scheduled_for, missed.body.data.reason], ['schedule.missed', '2026-03-08T02:00:00.000Z', 'daemon down'])
    const internal: DaemonEvent[] = [
      {at, job, phase: 'convert', type: 'job:phase'},
      {at, durationMs: 1, job, kind: 'convert', stage: 's', status: 'ok', type: 'job:stage'},
      {at, job, type: 'job:duplicate'},
      {at, idleSeconds: 60, queued: 1, running: 1, type: 'daemon:stalled'},
      {at, state: 'PAUSED', type: 'daemon:state'},
    ]
    for (const e of internal) assert.equal(lifecycleEvent(e), undefined, e.type)
    assert.equal(new Set(LIFECYCLE_EVENTS).size, 10)
  })
})

describe('job.progress throttle and coalescing', function () {
  this.timeout(20_000)

  it('ProgressThrottle: once per interval per job and hook; forget() resets a job', () => {
    const t = new ProgressThrottle()
    assert.equal(t.allow('h1', 'j1', 30_000, 0), true)
    assert.equal(t.allow('h1', 'j1', 30_000, 29_999), false)
    assert.equal(t.allow('h2', 'j1', 5000, 1000), true, 'another hook has its own clock')
    assert.equal(t.allow('h1', 'j2', 30_000, 1000), true, 'another job too')
    assert.equal(t.allow('h1', 'j1', 30_000, 30_000), true)
    t.forget('j1')
    assert.equal(t.allow('h1', 'j1', 30_000, 30_001), true)
    t.forget('j1')
    t.forget('j2')
    assert.equal(t.size, 0)
  })

  const hook = (id: string, progressIntervalMs: number, url = 'http://127.0.0.1:9/h'): LifecycleHookSettings => ({enabled: true, headers: {}, id, maxAttempts: 4, progressIntervalMs, timeoutMs: 1000, url})
  const progress = (j = job): DaemonEvent => ({at, job: j, phase: 'convert', stage: 'convert:qemu-img', type: 'job:progress'})

  it('WebhookProducer: each hook at its own progress_interval; a job that ends is forgotten; disabled hooks are no channel', () => {
    let now = 0
    const producer = new WebhookProducer([hook('fast', 1000), hook('slow', 10_000), {...hook('off', 1000), enabled: false}], () => now)
    assert.deepEqual(producer.channels.map((c) => c.id), ['fast', 'slow'])
    const [fast, slow] = producer.channels
    const let_through = () => {
      const [m] = producer.messagesFor(progress())
      assert.equal(m!.coalesce, 'progress:job-1')
      return [m!.only!(fast!), m!.only!(slow!)]
    }
    assert.deepEqual(let_through(), [true, true])
    now = 500
    assert.deepEqual(let_through(), [false, false])
    now = 1500
    assert.deepEqual(let_through(), [true, false])
    now = 10_000
    assert.deepEqual(let_through(), [true, true])
    const [done] = producer.messagesFor({at, attempt: 1, durationMs: 1, job, maxRetries: 3, outputBytes: 1, outputPath: '/o', type: 'job:succeeded'})
    assert.equal(done!.event, 'job.completed')
    assert.equal(done!.only, undefined)
    now = 10_001
    assert.deepEqual(let_through(), [true, true], 'forgotten when the job ended')
    assert.deepEqual(producer.messagesFor({at, job, phase: 'x', type: 'job:phase'}), [])
  })

  describe('the engine keeps at most one pending progress per job and channel', () => {
    let dir: string
    let cleanup: () => void
    let receiver: WebhookReceiver
    const engines: DeliveryEngine[] = []
    beforeEach(async () => {
      ;({cleanup, dir} = makeTempDir('h2k-lifecycle-'))
      receiver = await WebhookReceiver.start()
    })
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close()
      await receiver.close()
      cleanup()
    })
    const rows = (path: string) => {
      const db = new Database(path, {readonly: true})
      try {
        return db.prepare('SELECT id, event, status, attempts, payload_json FROM notification_outbox ORDER BY rowid').all() as Array<{id: string; event: string; status: string; attempts: number; payload_json: string}>
      } finally {
        db.close()
      }
    }

    it('a waiting progress is replaced by a newer one (same delivery id); one being sent makes the newer one drop', async () => {
      // 503 with a long Retry-After: the first progress waits in the outbox.
      receiver.reply = () => ({headers: {'Retry-After': '3600'}, status: 503})
      const path = join(dir, 'jobs.db')
      const channel = new LifecycleWebhookChannel(hook('h', 0, receiver.url('/h')))
      const e = new DeliveryEngine(openOutbox(path), [channel], () => {})
      engines.push(e)
      e.start()
      const [first] = e.enqueue('job.progress', {n: 1}, {coalesce: 'progress:job-1'})
      await until('first attempt answered', () => rows(path)[0]?.attempts === 1, 5000)
      const [second] = e.enqueue('job.progress', {n: 2}, {coalesce: 'progress:job-1'})
      const [third] = e.enqueue('job.progress', {n: 3}, {coalesce: 'progress:job-1'})
      assert.deepEqual([second, third], [first, first])
      assert.equal(rows(path).length, 1)
      assert.deepEqual(JSON.parse(rows(path)[0]!.payload_json), {n: 3})
      const [other] = e.enqueue('job.progress', {n: 1}, {coalesce: 'progress:job-2'})
      assert.notEqual(other, first, 'another job has its own')

      // In flight: the newer one is dropped, nothing more is queued.
      receiver.reply = () => ({hang: true, status: 200})
      const hanging = join(dir, 'hang.db')
      const h = new DeliveryEngine(openOutbox(hanging), [channel], () => {})
      engines.push(h)
      h.start()
      h.enqueue('job.progress', {n: 1}, {coalesce: 'progress:job-1'})
      const before = receiver.requests.length
      await until('in flight', () => receiver.requests.length > before, 5000)
      assert.deepEqual(h.enqueue('job.progress', {n: 2}, {coalesce: 'progress:job-1'}), [])
      assert.equal(rows(hanging).length, 1)
    })

    it('a lifecycle channel: one attempt in flight (order kept), its own timeout and retry count, delivery_id in the body', async () => {
      // Slow answers: with the engine's 4 at a time, five messages would race; one channel sends one at a time.
      let inFlight = 0
      let most = 0
      const got: Array<{i: number; delivery: string; header: string}> = []
      const slow = createServer((req, res) => {
        inFlight++
        most = Math.max(most, inFlight)
        let body = ''
        req.on('data', (c: Buffer) => (body += c))
        req.on('end', () => {
          const json = JSON.parse(body) as {i: number; delivery_id: string}
          got.push({delivery: json.delivery_id, header: String(req.headers['x-hyper2kvm-delivery']), i: json.i})
          setTimeout(() => {
            inFlight--
            res.end('ok')
          }, 80)
        })
      })
      await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r))
      try {
        const slowChannel = new LifecycleWebhookChannel({...hook('s', 0, `http://127.0.0.1:${(slow.address() as AddressInfo).port}/s`), maxAttempts: 1})
        const ordered = new DeliveryEngine(openOutbox(join(dir, 'ordered.db')), [slowChannel], () => {})
        engines.push(ordered)
        for (let i = 0; i < 5; i++) ordered.enqueue('job.started', {i})
        await until('five received', () => got.length === 5 && inFlight === 0, 10_000)
        assert.deepEqual(got.map((g) => g.i), [0, 1, 2, 3, 4])
        assert.ok(got.every((g) => g.header === g.delivery && /^[0-9a-f-]{36}$/.test(g.delivery)))
      } finally {
        slow.closeAllConnections()
        await new Promise((r) => slow.close(r))
      }
      assert.equal(most, 1, 'one at a time')
      receiver.reply = () => ({status: 200})
      const path = join(dir, 'jobs.db')
      const channel = new LifecycleWebhookChannel({...hook('h', 0, receiver.url('/h')), maxAttempts: 2, timeoutMs: 300})
      const e = new DeliveryEngine(openOutbox(path), [channel], () => {}, {baseDelayMs: 10, maxDelayMs: 20})
      engines.push(e)

      // Its own limits: a 300 ms timeout and 2 attempts (the engine's defaults are 10 s and 8).
      receiver.reply = () => ({hang: true, status: 200})
      e.start()
      const started = Date.now()
      e.enqueue('job.completed', {x: 1})
      await until('given up', () => rows(path)[0]?.status === 'failed', 10_000)
      assert.equal(rows(path)[0]!.attempts, 2)
      assert.equal(receiver.requests.length, 2)
      assert.ok(Date.now() - started < 5000)
    })
  })
})

describe('signedPost: the one request both kinds of webhook send', () => {
  let receiver: WebhookReceiver
  beforeEach(async () => {
    receiver = await WebhookReceiver.start({'/signed': 'post-secret-71ac'})
  })
  afterEach(async () => {
    await receiver.close()
  })

  it('custom headers, delivery id and event; signed over exactly the body when there is a secret, unsigned without', async () => {
    const body = JSON.stringify({event: 'job.started', n: 1})
    const message = {event: 'job.started', id: '0f6d2b1e-2a51-4c57-9d0e-3f1c8e7a9b10'}
    const signed = await signedPost({headers: {'X-Team': 'migration'}, secret: 'post-secret-71ac', url: receiver.url('/signed')}, body, message, AbortSignal.timeout(5000))
    assert.deepEqual(signed, {detail: 'HTTP 200', ok: true})
    const [r] = receiver.on('/signed')
    assert.equal(r!.body, body)
    assert.equal(r!.signatureValid, true)
    assert.deepEqual([r!.headers['x-team'], r!.headers['x-hyper2kvm-delivery'], r!.headers['x-hyper2kvm-event'], r!.headers['content-type']], ['migration', message.id, 'job.started', 'application/json'])
    await signedPost({headers: {}, url: receiver.url('/plain')}, body, message, AbortSignal.timeout(5000))
    assert.equal(receiver.on('/plain')[0]!.headers['x-hyper2kvm-signature'], undefined)
    receiver.reply = () => ({status: 503})
    assert.deepEqual(await signedPost({headers: {}, url: receiver.url('/plain')}, body, message, AbortSignal.timeout(5000)), {ok: false, permanent: false, reason: 'HTTP 503'})
  })

  it('the notification webhook and the lifecycle webhook both go through it: same headers, both verifiable', async () => {
    const lifecycle = new LifecycleWebhookChannel({enabled: true, headers: {'X-Team': 'a'}, id: 'l', maxAttempts: 1, progressIntervalMs: 1000, secret: 'post-secret-71ac', timeoutMs: 1000, url: receiver.url('/signed')})
    const notify = new WebhookChannel({headers: {'X-Team': 'a'}, id: 'n', secret: 'post-secret-71ac', type: 'generic', url: receiver.url('/signed')})
    const message = {attempt: 1, createdAt: at, event: 'test', id: 'd-1', payload: {data: {}, event: 'test', timestamp: at.toISOString()}}
    assert.equal((await lifecycle.send(message, AbortSignal.timeout(5000))).ok, true)
    assert.equal((await notify.send({...message, id: 'd-2', payload: testNotice(at)}, AbortSignal.timeout(5000))).ok, true)
    const [a, b] = receiver.on('/signed')
    assert.deepEqual([a!.signatureValid, b!.signatureValid], [true, true])
    const ours = (h: Record<string, unknown>) => Object.keys(h).filter((k) => k.startsWith('x-')).sort()
    assert.deepEqual(ours(a!.headers), ours(b!.headers))
    assert.deepEqual([a!.json.delivery_id, a!.headers['x-hyper2kvm-delivery'], b!.headers['x-hyper2kvm-delivery']], ['d-1', 'd-1', 'd-2'])
  })
})

describe('webhooks: settings', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => {
    ;({cleanup, dir} = makeTempDir('h2k-webhook-settings-'))
  })
  afterEach(() => cleanup())

  it('the seed keys and ours: timeout, retry, enabled, events, secret_file, progress_interval; stable ids', async () => {
    writeFileSync(join(dir, 'hook.secret'), 'file-secret-b71e0c\n', {mode: 0o600})
    const warnings: string[] = []
    const hooks = await parseWebhooks(
      [
        {enabled: true, events: ['job.completed', 'job.failed'], headers: {Authorization: 'Bearer slack-token-123'}, retry: 3, timeout: '10s', url: 'https://slack.com/api/incoming/webhook'},
        {events: ['job.completed', 'vm.discovered'], progress_interval: 5, retry: 0, secret_file: 'hook.secret', timeout: 2.5, url: 'https://myapp.com/api/migration-complete'},
        {enabled: false, url: 'https://myapp.com/api/migration-complete'},
      ],
      dir,
      (m) => warnings.push(m),
    )
    assert.deepEqual(hooks.map((h) => [h.enabled, h.timeoutMs, h.maxAttempts, h.progressIntervalMs]), [[true, 10_000, 4, 30_000], [true, 2500, 1, 5000], [false, 10_000, 4, 30_000]])
    assert.deepEqual(hooks[1]!.events, ['job.completed'])
    assert.equal(hooks[1]!.secret, 'file-secret-b71e0c')
    assert.equal(hooks[2]!.events, undefined)
    assert.match(warnings.join('\n'), /vm\.discovered is never sent/)
    assert.match(hooks[0]!.id, /^lifecycle:[0-9a-f]{12}$/)
    assert.equal(hooks[2]!.id, `${hooks[1]!.id}-1`, 'the same URL twice: two ids')
    const again = await parseWebhooks([{url: 'https://slack.com/api/incoming/webhook'}], dir, () => {})
    assert.equal(again[0]!.id, hooks[0]!.id, 'stable across loads')
    assert.equal(redactSecrets('sent Bearer slack-token-123, then slack-token-123'), 'sent [REDACTED], then [REDACTED]', 'a credential header (and its token alone) is never logged')
  })

  it('refused: an unknown event, a URL with a password (unquoted), a header with a newline; timeout forms', async () => {
    await assert.rejects(parseWebhooks([{events: ['job.complete'], url: 'https://x.example/h'}], dir, () => {}), /webhooks\[0\]\.events: unknown event "job\.complete"/)
    await assert.rejects(parseWebhooks([{url: 'https://u:pw-9c1d@x.example/h'}], dir, () => {}), (e: Error) => /user name or password/.test(e.message) && !e.message.includes('pw-9c1d'))
    await assert.rejects(parseWebhooks([{headers: {'X-Token': 'a\nb'}, url: 'https://x.example/h'}], dir, () => {}), /webhooks\[0\]\.headers\.X-Token: has a control character/)
    assert.deepEqual([timeoutMsOf('500ms'), timeoutMsOf('1m'), timeoutMsOf(3), timeoutMsOf(undefined)], [500, 60_000, 3000, 10_000])
    assert.throws(() => timeoutMsOf('10m'), /between 0\.1 s and 5 min/)
  })

  it('the README\'s example is valid for the daemon schema and loads; its payload example has every key lifecycleEvent gives a completed job', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const section = readme.slice(readme.indexOf('#### Lifecycle webhooks'), readme.indexOf('#### Metrics and health'))
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!
    const validate = schemaValidator('daemon')
    const config = {command: 'daemon', output_dir: 'o', watch_dir: 'q', ...(parse(yaml) as object)}
    assert.equal(validate(config), true, JSON.stringify(validate.errors))
    writeFileSync(join(dir, 'ci-hook.secret'), 'readme-secret-1\n', {mode: 0o600})
    const spec = (parse(yaml) as {webhooks: WebhookKeys[]}).webhooks.map((w) => ({...w, secret_file: 'ci-hook.secret'}))
    const [hook] = await parseWebhooks(spec, dir, () => {})
    assert.deepEqual([hook!.timeoutMs, hook!.maxAttempts, hook!.progressIntervalMs, hook!.events], [10_000, 4, 30_000, ['job.completed', 'job.failed', 'job.dead']])
    const example = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!.replace(/^ {2}/gm, '')) as Body & {delivery_id: string}
    const real = lifecycleBody(lifecycleEvent({at, attempt: 1, durationMs: 1, job, maxRetries: 3, outputBytes: 1, outputPath: '/o', type: 'job:succeeded'})!) as Body
    assert.deepEqual(Object.keys(example).sort(), [...Object.keys(real), 'delivery_id'].sort())
    assert.deepEqual(Object.keys(example.data).sort(), Object.keys(real.data).sort())
    assert.deepEqual(Object.keys(example.job!).sort(), Object.keys(real.job!).sort())
  })
})
