import assert from 'node:assert/strict'
import {join} from 'node:path'

import Database from 'better-sqlite3'

import {backoffMs, DeliveryEngine, type DeliveryLog} from '../../src/delivery/delivery-engine.js'
import type {Outbox} from '../../src/delivery/outbox.js'
import {openOutbox} from '../helpers/outbox-file.js'
import {retryAfterMs} from '../../src/delivery/http-post.js'
import {testNotice} from '../../src/notify/notice.js'
import {WebhookChannel} from '../../src/notify/webhook-channel.js'
import {until} from '../helpers/daemon-process.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {WebhookReceiver} from '../helpers/webhook-receiver.js'

interface Logged {
  level: string
  event: string
  fields: Record<string, unknown>
  message: string
}

const SECRET = 'unit-secret-5f0c1a'

/** The delivery engine against a real HTTP receiver on loopback and a real SQLite outbox. */
describe('notification delivery: outbox, retries, backoff', function () {
  this.timeout(30_000)
  let dir: string
  let cleanup: () => void
  let receiver: WebhookReceiver
  let logged: Logged[]
  const engines: DeliveryEngine[] = []
  const log: DeliveryLog = (level, event, fields, message = '') => logged.push({event, fields, level, message})

  beforeEach(async () => {
    ;({cleanup, dir} = makeTempDir('h2k-delivery-'))
    receiver = await WebhookReceiver.start({'/hook': SECRET})
    logged = []
  })
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close()
    await receiver.close()
    cleanup()
  })

  const channel = () => new WebhookChannel({headers: {}, id: 'generic:test', secret: SECRET, type: 'generic', url: receiver.url('/hook')})
  const engine = (outbox: Outbox, options = {}) => {
    const e = new DeliveryEngine(outbox, [channel()], log, {baseDelayMs: 20, maxDelayMs: 200, timeoutMs: 2000, ...options})
    engines.push(e)
    e.start()
    return e
  }
  const rows = (path: string) => {
    const db = new Database(path, {readonly: true})
    try {
      return db.prepare('SELECT * FROM notification_outbox').all() as Array<{id: string; status: string; attempts: number; last_error: string | null}>
    } finally {
      db.close()
    }
  }

  it('backoff is full jitter under a doubling ceiling; Retry-After reads seconds and dates', () => {
    const options = {baseDelayMs: 1000, maxDelayMs: 5000}
    assert.equal(backoffMs(1, options, () => 1), 1000)
    assert.equal(backoffMs(3, options, () => 1), 4000)
    assert.equal(backoffMs(10, options, () => 1), 5000)
    assert.equal(backoffMs(3, options, () => 0), 0)
    assert.equal(retryAfterMs('3'), 3000)
    assert.equal(retryAfterMs(new Date(Date.now() + 60_000).toUTCString(), Date.now()) ! > 58_000, true)
    assert.equal(retryAfterMs('soon'), undefined)
  })

  it('503 twice then 200: delivered on the third attempt, same delivery id, signed every time', async () => {
    receiver.reply = ({index}) => ({status: index < 2 ? 503 : 200})
    const path = join(dir, 'jobs.db')
    const outbox = openOutbox(path)
    const [id] = engine(outbox).enqueue('test', testNotice())
    await until('delivered', () => rows(path)[0]?.status === 'delivered', 10_000)
    assert.equal(receiver.requests.length, 3)
    assert.deepEqual(new Set(receiver.requests.map((r) => r.headers['x-hyper2kvm-delivery'])), new Set([id]))
    assert.ok(receiver.requests.every((r) => r.signatureValid === true))
    assert.equal(rows(path)[0]!.attempts, 3)
    assert.equal(logged.filter((l) => l.event === 'notify:retry').length, 2)
  })

  it('a permanent 4xx is tried once and given up (logged); 408 and 429 are retried, 429 after its Retry-After', async () => {
    receiver.reply = () => ({status: 400})
    const path = join(dir, 'jobs.db')
    const outbox = openOutbox(path)
    const e = engine(outbox)
    e.enqueue('test', testNotice())
    await until('failed', () => rows(path)[0]?.status === 'failed', 10_000)
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(receiver.requests.length, 1)
    assert.equal(rows(path)[0]!.last_error, 'HTTP 400')
    assert.ok(logged.some((l) => l.level === 'error' && l.event === 'notify:failed' && l.fields.permanent === true))

    receiver.requests.length = 0
    receiver.reply = ({index}) => (index === 0 ? {headers: {'Retry-After': '1'}, status: 429} : index === 1 ? {status: 408} : {status: 204})
    const started = Date.now()
    e.enqueue('test', testNotice())
    await until('second delivered', () => rows(path).some((r) => r.status === 'delivered'), 10_000)
    assert.equal(receiver.requests.length, 3)
    assert.ok(Date.now() - started >= 1000, 'the 429 Retry-After (1 s) was honoured')
  })

  it('a redirect is not followed; an unanswered request times out and is retried until max attempts', async () => {
    receiver.reply = ({path}) => (path === '/hook' ? {headers: {Location: receiver.url('/elsewhere')}, status: 302} : {status: 200})
    const path = join(dir, 'jobs.db')
    const outbox = openOutbox(path)
    engine(outbox).enqueue('test', testNotice())
    await until('failed', () => rows(path)[0]?.status === 'failed', 10_000)
    assert.deepEqual(receiver.requests.map((r) => r.path), ['/hook'])
    assert.match(rows(path)[0]!.last_error!, /302 redirect/)

    receiver.requests.length = 0
    receiver.reply = () => ({hang: true, status: 200})
    const path2 = join(dir, 'other.db')
    engine(openOutbox(path2), {maxAttempts: 3, timeoutMs: 200}).enqueue('test', testNotice())
    await until('given up', () => rows(path2)[0]?.status === 'failed', 10_000)
    assert.equal(receiver.requests.length, 3)
    assert.equal(rows(path2)[0]!.last_error, 'timed out')
    assert.equal(rows(path2)[0]!.attempts, 3)
  })

  it('close() aborts an attempt in flight without counting it; a new engine on the same outbox delivers it', async () => {
    receiver.reply = () => ({hang: true, status: 200})
    const path = join(dir, 'jobs.db')
    const first = new DeliveryEngine(openOutbox(path), [channel()], log, {timeoutMs: 10_000})
    first.start()
    const [id] = first.enqueue('test', testNotice())
    await until('request in flight', () => receiver.requests.length === 1, 5000)
    const closing = Date.now()
    await first.close()
    assert.ok(Date.now() - closing < 2000, 'close does not wait for the timeout')
    assert.deepEqual(rows(path).map((r) => [r.status, r.attempts]), [['pending', 0]])
    receiver.reply = () => ({status: 200})
    engine(openOutbox(path))
    await until('delivered after restart', () => rows(path)[0]?.status === 'delivered', 10_000)
    assert.equal(receiver.requests.at(-1)!.headers['x-hyper2kvm-delivery'], id)
  })

  it('a message older than the max age is given up without being sent', async () => {
    const path = join(dir, 'jobs.db')
    const outbox = openOutbox(path)
    outbox.add('generic:test', 'test', testNotice(), Date.now() - 7_200_000)
    engine(outbox, {maxAgeMs: 3_600_000})
    await until('expired', () => rows(path)[0]?.status === 'failed', 5000)
    assert.equal(rows(path)[0]!.last_error, 'expired before delivery')
    assert.equal(receiver.requests.length, 0)
  })
})
