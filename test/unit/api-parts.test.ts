import assert from 'node:assert/strict'

import Database from 'better-sqlite3'

import {EventStream} from '../../src/api/event-stream.js'
import {httpStatusOf} from '../../src/api/api-errors.js'
import type {DaemonEvent, JobInfo} from '../../src/daemon/daemon-events.js'
import {JOB_LOG_LINES, JobLogStore} from '../../src/daemon/job-log-store.js'
import {jobLogMigration} from '../../src/daemon/migrations/004-job-log.js'
import {RateLimiter} from '../../src/http/rate-limit.js'
import type {StreamSink} from '../../src/http/routes.js'
import {lifecycleEvent} from '../../src/webhooks/lifecycle-events.js'
import {SqliteDb} from '../../src/store/sqlite-db.js'

const job: JobInfo = {fileType: 'raw', filename: 'a.raw', id: 'j1', intakeId: 'j1', name: 'vm', origin: 'api', sizeBytes: 1}
const error = {code: 'H2K_TOOL_FAILED', message: 'boom', permanent: false}

/** A sink that keeps what was written. */
function sink(): StreamSink & {text: string} {
  const closers: Array<() => void> = []
  const s = {
    closed: false,
    end() {
      s.closed = true
      for (const fn of closers) fn()
    },
    onClose: (fn: () => void) => void closers.push(fn),
    text: '',
    write(text: string) {
      s.text += text
      return true
    },
  }
  return s
}

describe('REST API parts: rate limit, event stream, lifecycle events, job log', () => {
  it('rate limit: a burst, then one request per refill interval, with the seconds to wait', () => {
    let now = 0
    const limiter = new RateLimiter({burst: 2, requestsPerMinute: 6}, () => now)
    assert.deepEqual([limiter.take('t'), limiter.take('t')], [{ok: true}, {ok: true}])
    assert.deepEqual(limiter.take('t'), {ok: false, retryAfterSeconds: 10})
    assert.deepEqual(limiter.take('other'), {ok: true}, 'per key')
    now = 4000
    assert.deepEqual(limiter.take('t'), {ok: false, retryAfterSeconds: 6})
    now = 10_000
    assert.deepEqual(limiter.take('t'), {ok: true})
  })

  it('maps error codes to statuses in one place', () => {
    assert.deepEqual(['H2K_JOB_INVALID', 'H2K_USAGE', 'H2K_UNSAFE_PATH', 'H2K_JOB_STATE', 'H2K_STORE_FAILED', 'H2K_INTERNAL'].map(httpStatusOf), [400, 400, 403, 409, 500, 500])
  })

  it('lifecycle events: the seed names, retrying on job.failed, nothing for phases', () => {
    const at = new Date('2026-01-01T00:00:00Z')
    assert.equal(lifecycleEvent({at, job, type: 'job:queued'})?.event, 'job.created')
    const retry = lifecycleEvent({at, attempt: 1, delayMs: 5, error, job, maxRetries: 3, nextRetryAt: at, type: 'job:retry'})!
    assert.equal(retry.event, 'job.failed')
    assert.equal(retry.data.retrying, true)
    assert.equal(lifecycleEvent({at, attempt: 4, durationMs: 1, error, job, maxRetries: 3, retrying: false, type: 'job:failed'})?.data.retrying, false)
    assert.equal(lifecycleEvent({at, attempts: 4, error, job, type: 'job:dead'})?.event, 'job.dead')
    assert.equal(lifecycleEvent({at, job, parent: 'p', type: 'job:skipped'})?.data.parent_job_id, 'p')
    assert.equal(lifecycleEvent({at, job, phase: 'load', type: 'job:phase'}), undefined)
  })

  it('event stream: job.progress at most once per job per second, ids in order, filters, replay after Last-Event-ID', () => {
    const stream = new EventStream(2)
    const all = sink()
    stream.reply({}).open(all)
    const only = sink()
    stream.reply({events: ['job.completed'], job: 'j1'}).open(only)
    assert.equal(stream.full, true)
    const progress = (ms: number, id = 'j1'): DaemonEvent => ({at: new Date(ms), job: {...job, id}, phase: 'convert', stage: 's', type: 'job:progress'})
    for (const e of [progress(0), progress(500), progress(999), progress(1000), progress(1200, 'j2'), progress(1500)]) stream.onDaemonEvent(e)
    stream.onDaemonEvent({at: new Date(2000), attempt: 1, durationMs: 1, job, maxRetries: 0, outputBytes: 1, outputPath: '/o', type: 'job:succeeded'})
    const events = [...all.text.matchAll(/id: (\d+)\nevent: (\S+)\ndata: (.*)\n\n/g)].map((m) => [Number(m[1]), m[2], (JSON.parse(m[3]!) as {job_id: string}).job_id, (JSON.parse(m[3]!) as {timestamp: string}).timestamp])
    const at = (ms: number) => new Date(ms).toISOString()
    assert.deepEqual(events, [[1, 'job.progress', 'j1', at(0)], [2, 'job.progress', 'j1', at(1000)], [3, 'job.progress', 'j2', at(1200)], [4, 'job.completed', 'j1', at(2000)]], 'progress at 0 and 1000 of j1, at 1200 of j2; the ones within a second dropped; each says when')
    // Once a job has ended its throttle is forgotten: a retry's first progress goes out at once.
    stream.onDaemonEvent(progress(2100))
    assert.match(all.text, /id: 5\nevent: job\.progress\n/)
    assert.equal([...only.text.matchAll(/^event: /gm)].length, 1)
    all.end()
    assert.equal(stream.size, 1)
    const again = sink()
    stream.reply({lastEventId: 2}).open(again)
    assert.deepEqual([...again.text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])), [3, 4, 5])
    stream.close()
    assert.equal(again.closed, true)
  })

  it('job log: numbered per job, followed with `after`, bounded to the newest lines', () => {
    const sql = SqliteDb.open(':memory:')
    const db = sql.raw
    db.exec('CREATE TABLE jobs (id TEXT PRIMARY KEY)')
    jobLogMigration.up(sql)
    db.exec("INSERT INTO jobs VALUES ('a'), ('b')")
    const store = new JobLogStore(sql)
    const line = (n: number) => ({at: 't', event: 'job:x', fields: {n}, level: 'info', message: `line ${n}`})
    for (let n = 1; n <= JOB_LOG_LINES + 150; n++) store.append('a', line(n))
    store.append('b', line(1))
    store.append('gone', line(1))
    assert.deepEqual(store.lines('gone'), [], 'a line about a job the store does not hold is dropped, not an error')
    assert.deepEqual(store.lines('b').map((l) => l.seq), [1])
    // Trimmed every 100 lines: at most JOB_LOG_LINES + 99 kept, the oldest gone.
    assert.equal(store.lines('a', 0, 1)[0]!.seq, 101)
    assert.equal((db.prepare("SELECT COUNT(*) AS n FROM job_log WHERE job_id = 'a'").get() as {n: number}).n, JOB_LOG_LINES + 50)
    assert.deepEqual(store.lines('a', JOB_LOG_LINES + 148).map((l) => [l.seq, l.fields.n]), [[JOB_LOG_LINES + 149, JOB_LOG_LINES + 149], [JOB_LOG_LINES + 150, JOB_LOG_LINES + 150]])
    // A new store on the same database continues the numbering.
    new JobLogStore(sql).append('a', line(0))
    assert.equal(store.lines('a', JOB_LOG_LINES + 150)[0]!.seq, JOB_LOG_LINES + 151)
    db.close()
  })
})
