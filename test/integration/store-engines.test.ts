import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {H2KError} from '@hyper2kvm/plugin-api'
import {JobLogStore} from '../../src/daemon/job-log-store.js'
import {appliedMigrations, applyMigrations} from '../../src/daemon/migrations/apply-migrations.js'
import {MIGRATIONS} from '../../src/daemon/migrations/index.js'
import {JobStore, type NewJobRow} from '../../src/daemon/store.js'
import {Outbox} from '../../src/delivery/outbox.js'
import {ScheduleStore} from '../../src/schedule/schedule-store.js'
import type {ScheduleSpec} from '../../src/schedule/schedule.js'
import {PostgresDb} from '../../src/store/postgres-db.js'
import type {PostgresTlsSettings, StoreTarget} from '../../src/store/store-target.js'
import {PgCluster, usePgCluster} from '../helpers/pg-cluster.js'
import {RemoteTcpProxy} from '../helpers/remote-tcp-proxy.js'
import {runCli} from '../helpers/run-cli.js'
import {killAll, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const run = promisify(execFile)

/** A job as the daemon inserts one (the fields the store requires), named `id`. */
const newJob = (id: string, extra: Partial<NewJobRow> = {}): NewJobRow => ({definition_json: JSON.stringify({id}), id, name: id, output_path: `/out/${id}`, source_path: `${id}.raw`, vm_path: `/in/${id}.raw`, ...extra})

const isCode = (code: string) => (error: unknown): boolean => error instanceof H2KError && error.code === code

const spec = (id: string, extra: Partial<ScheduleSpec> = {}): ScheduleSpec => ({catchUp: 'one', cron: '0 2 * * *', enabled: true, id, name: id, overlap: 'skip', source: 'api', tags: ['a'], template: {input: '/in/x.raw'}, timezone: 'UTC', ...extra})

/** The child process of test/helpers/store-child.ts in `mode`, given the store's settings. */
async function storeChild(mode: string, settings: unknown, env: Record<string, string> = {}): Promise<string> {
  const {stdout} = await run(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../helpers/store-child.ts'), mode], {
    env: {...process.env, H2K_TEST_STORE: JSON.stringify(settings), ...env},
    timeout: 60_000,
  })
  return stdout.trim()
}

describe('the job store on both engines (SQLite and PostgreSQL: one suite)', function () {
  this.timeout(120_000)
  const pg = usePgCluster()
  let temp: ReturnType<typeof makeTempDir>
  /** Everything a test opened: closed after it, whatever happened. */
  let opened: Array<{close(): void}> = []
  /** Proxies a test started: closed after it. */
  let proxies: RemoteTcpProxy[] = []
  before(() => (temp = makeTempDir('h2k-engines-')))
  after(() => temp.cleanup())
  afterEach(async () => {
    for (const handle of opened.reverse()) handle.close()
    opened = []
    for (const proxy of proxies) await proxy.close()
    proxies = []
  })

  const engines: Array<{name: 'sqlite' | 'postgres'; fresh: () => Promise<StoreTarget>}> = [
    {fresh: async () => ({sqlitePath: join(temp.dir, `${randomUUID()}.db`)}), name: 'sqlite'},
    {fresh: async () => ({postgres: pg().settings(await pg().createDatabase()), sqlitePath: join(temp.dir, 'never-used.db')}), name: 'postgres'},
  ]

  for (const engine of engines) {
    describe(engine.name, () => {
      async function openStore(): Promise<JobStore> {
        const store = JobStore.open(await engine.fresh())
        opened.push(store)
        return store
      }

      it('jobs: insert, transition with history, attempts, dependencies, waits, lookups, delete (cascading)', async () => {
        const store = await openStore()
        assert.equal(store.engine, engine.name)
        store.insertJob(newJob('parent'))
        const child = store.insertJob(newJob('child', {depends_on: ['parent'], intake_id: 'claim-1', origin: 'api', wait_reason: 'dependency'}))
        assert.deepEqual([child.status, child.origin, child.intake_id, child.wait_reason, child.attempts], ['queued', 'api', 'claim-1', 'dependency', 0])
        assert.ok(!('seq' in child), 'the insertion counter is the store\'s own business')
        assert.deepEqual(store.dependenciesOf('child'), ['parent'])
        assert.deepEqual(store.dependentsOf('parent'), ['child'])

        const running = store.transition('parent', 'running', 'started', {attempts: 1, started_at: '2026-01-01T00:00:00.000Z'})
        assert.deepEqual([running.status, running.attempts, running.started_at], ['running', 1, '2026-01-01T00:00:00.000Z'])
        assert.equal(store.startAttempt('parent'), 1)
        store.endAttempt('parent', 1, 'retry', {code: 'H2K_TOOL_FAILED'})
        assert.equal(store.startAttempt('parent'), 2)
        store.endOpenAttempts('parent', 'requeued')
        assert.deepEqual(store.attemptsOf('parent').map((a) => [a.attempt, a.outcome, a.error_json]), [[1, 'retry', '{"code":"H2K_TOOL_FAILED"}'], [2, 'requeued', null]])
        store.transition('parent', 'succeeded', 'done', {completed_at: '2026-01-01T00:01:00.000Z', next_attempt_at: 1_767_225_600_000})
        assert.equal(store.job('parent')!.next_attempt_at, 1_767_225_600_000, 'a ms epoch comes back as a number')
        assert.deepEqual(store.historyOf('parent').map((h) => [h.from_status, h.to_status, h.detail]), [[null, 'queued', 'claimed parent.raw'], ['queued', 'running', 'started'], ['running', 'succeeded', 'done']])
        assert.equal(typeof store.historyOf('parent')[0]!.id, 'number')

        store.setWait('child', 1_767_225_600_000, 'window')
        assert.deepEqual([store.job('child')!.not_before, store.job('child')!.wait_reason], [1_767_225_600_000, 'window'])
        assert.deepEqual(store.unfinished().map((j) => j.id), ['child'])
        assert.deepEqual(store.jobsOfIntake('claim-1').map((j) => j.id), ['child'])
        assert.equal(store.findJob('chi')!.id, 'child')
        assert.equal(store.outputPathOwner('/out/parent'), 'parent')
        assert.equal(store.outputPathOwner('/out/parent', 'parent'), undefined)
        assert.deepEqual(store.jobs({status: 'succeeded'}).map((j) => j.id), ['parent'])
        assert.equal(store.jobs({limit: 1}).length, 1)
        assert.throws(() => store.transition('child', 'exploded' as never), isCode('H2K_STORE_FAILED'), 'the status CHECK constraint holds')
        assert.equal(store.job('child')!.status, 'queued')

        assert.equal(store.deleteJobs(['parent']), 1)
        assert.deepEqual([store.historyOf('parent'), store.attemptsOf('parent'), store.dependenciesOf('child')], [[], [], []])
        assert.equal(store.schemaVersion, MIGRATIONS.at(-1)!.version)
      })

      it('findJob: an exact id first, else a unique prefix whatever its case; % _ ! in a prefix are characters, not wildcards', async () => {
        const store = await openStore()
        for (const id of ['Job_A1', 'job%b2', 'jobxc3', 'other!1', 'other!2']) store.insertJob(newJob(id))
        assert.equal(store.findJob('Job_A1')!.id, 'Job_A1')
        assert.equal(store.findJob('job_a')!.id, 'Job_A1', 'a prefix matches whatever the case; _ is not a wildcard')
        assert.equal(store.findJob('JOB%')!.id, 'job%b2', '% is not a wildcard')
        assert.equal(store.findJob('job'), undefined, 'ambiguous')
        assert.equal(store.findJob('jobx')!.id, 'jobxc3')
        assert.equal(store.findJob('other!'), undefined, 'ambiguous')
        assert.equal(store.findJob('other!2')!.id, 'other!2')
        assert.equal(store.findJob('j_b'), undefined)
        assert.equal(store.findJob('%'), undefined)
      })

      it('jobsPage: newest first, cursor paging stable among jobs created in the same millisecond', async () => {
        const store = await openStore()
        const ids = Array.from({length: 8}, (_, i) => `job${i}`)
        // One transaction: most of them share created_at, only the insertion order tells them apart.
        store.transaction(() => ids.forEach((id) => store.insertJob(newJob(id, {status: id === 'job3' ? 'failed' : 'queued'}))))
        const seen: string[] = []
        let cursor: string | undefined
        for (let page = 0; page < 10; page++) {
          const result = store.jobsPage({limit: 3, ...(cursor === undefined ? {} : {cursor})})
          seen.push(...result.jobs.map((j) => j.id))
          assert.ok(result.jobs.every((j) => !('seq' in j) && !('row_key' in j)))
          if (result.nextCursor === null) break
          cursor = result.nextCursor
        }
        assert.deepEqual(seen, [...ids].reverse())
        assert.deepEqual(store.jobsPage({limit: 5, status: 'failed'}).jobs.map((j) => j.id), ['job3'])
        assert.throws(() => store.jobsPage({cursor: 'not-a-cursor', limit: 3}), isCode('H2K_USAGE'))
      })

      it('processed files (dedup): record, find by name+size or hash, stats, forget, purge by age', async () => {
        const store = await openStore()
        store.insertJob(newJob('a'))
        store.recordProcessed({file_hash: 'f'.repeat(64), file_size: 6_000_000_000, filename: 'big.vmdk', job_id: 'a', output_path: '/out/a'})
        store.recordProcessed({file_hash: null, file_size: 10, filename: 'small.raw', job_id: null, output_path: null})
        assert.equal(store.findProcessed('big.vmdk', 6_000_000_000)!.job_id, 'a')
        assert.equal(store.findProcessed('other-name.vmdk', 6_000_000_000, 'f'.repeat(64))!.filename, 'big.vmdk')
        assert.equal(store.findProcessed('big.vmdk', 1), undefined)
        const stats = store.processedStats()
        assert.deepEqual({...stats}, {byKey: {'name-size': 1, sha256: 1}, bytes: 6_000_000_010, files: 2, newest: stats.newest, oldest: stats.oldest, rows: 2})
        store.deleteJobs(['a'])
        assert.equal(store.findProcessed('big.vmdk', 6_000_000_000)!.job_id, null, 'ON DELETE SET NULL: the file stays known')
        assert.equal(store.forgetProcessed('small.raw'), 1)
        const future = new Date(Date.now() + 60_000).toISOString()
        assert.deepEqual(store.processedBefore(future).map((p) => p.filename), ['big.vmdk'])
        assert.equal(store.purgeProcessed(future), 1)
        assert.deepEqual(store.processedFiles(), [])
      })

      it('job log: numbered per job, followed with after, a line about an unknown job dropped', async () => {
        const store = await openStore()
        store.insertJob(newJob('a'))
        const log = new JobLogStore(store.sql)
        for (let n = 1; n <= 5; n++) log.append('a', {at: `t${n}`, event: 'job:x', fields: {n}, level: 'info', message: `line ${n}`})
        log.append('gone', {at: 't', event: 'job:x', fields: {}, level: 'info', message: 'nowhere'})
        assert.deepEqual(log.lines('a', 3).map((l) => [l.seq, l.fields.n, l.message]), [[4, 4, 'line 4'], [5, 5, 'line 5']])
        assert.deepEqual(log.lines('gone'), [])
        // A second writer on the same store (another daemon) continues the numbering.
        new JobLogStore(store.sql).append('a', {at: 't6', event: 'job:x', fields: {}, level: 'warn', message: 'six'})
        assert.deepEqual(log.lines('a', 5).map((l) => [l.seq, l.level]), [[6, 'warn']])
      })

      it('schedules: put (insert, then update keeping counters), runs with their ids, unfinished jobs, delete', async () => {
        const store = await openStore()
        const schedules = new ScheduleStore(store.sql)
        const created = schedules.put(spec('nightly', {window: '22:00-06:00', windowEnd: 'cancel'}), 1_767_225_600_000, 1_767_000_000_000)
        assert.deepEqual([created.nextRun, created.enabled, created.windowEnd, created.tags, created.runCount], [1_767_225_600_000, true, 'cancel', ['a'], 0])
        store.insertJob(newJob('j1', {origin: 'schedule', schedule_id: 'nightly'}))
        store.insertJob(newJob('j2', {origin: 'schedule', schedule_id: 'nightly'}))
        store.transition('j2', 'succeeded')
        const fired = schedules.recordRun({firedAt: 1_767_225_601_000, jobIds: ['j1', 'j2'], outcome: 'fired', scheduleId: 'nightly', scheduledFor: 1_767_225_600_000})
        const missed = schedules.recordRun({detail: 'down', firedAt: 1_767_312_001_000, outcome: 'missed', overrideWindow: true, scheduleId: 'nightly', scheduledFor: 1_767_312_000_000})
        assert.ok(missed.id > fired.id)
        assert.deepEqual([fired.jobIds, missed.overrideWindow, missed.detail], [['j1', 'j2'], true, 'down'])
        assert.deepEqual(schedules.runs('nightly').map((r) => r.outcome), ['missed', 'fired'])
        assert.deepEqual(schedules.unfinishedJobs('nightly'), ['j1'])
        const updated = schedules.put(spec('nightly', {enabled: false}), null, 1_767_400_000_000)
        assert.deepEqual([updated.enabled, updated.nextRun, updated.runCount, updated.lastRun, updated.createdAt], [false, null, 1, 1_767_225_601_000, created.createdAt])
        schedules.setNextRun('nightly', 5)
        assert.equal(schedules.get('nightly')!.nextRun, 5)
        assert.deepEqual(schedules.all().map((s) => s.id), ['nightly'])
        assert.equal(schedules.delete('nightly'), true)
        assert.deepEqual(schedules.runs('nightly'), [], 'runs go with their schedule')
      })

      it('notification outbox: each node delivers only the rows it wrote', async () => {
        const store = await openStore()
        const a = Outbox.on(store.sql, 'node-a')
        const first = a.add('hook:1', 'job.completed', {n: 1}, 1000)
        const b = Outbox.on(store.sql, 'node-b')
        // One SQLite store has one daemon: a new outbox adopts the earlier ones' pending rows. PostgreSQL keeps them apart.
        const adopted = engine.name === 'sqlite'
        a.add('hook:1', 'job.failed', {n: 2}, 1001)
        b.add('hook:1', 'job.started', {n: 3}, 1002)
        assert.deepEqual(a.due(5000, 10, new Set()).map((r) => r.event), adopted ? ['job.failed'] : ['job.completed', 'job.failed'])
        assert.deepEqual(b.due(5000, 10, new Set()).map((r) => r.event), adopted ? ['job.completed', 'job.started'] : ['job.started'])
        assert.ok(a.due(5000, 10, new Set()).every((r) => !('node_id' in r) && !('seq' in r)))
        assert.equal(a.pendingCount() + b.pendingCount(), 3)
        a.delivered(first, 1, 2000)
        assert.equal(a.isPending(first), false)
        assert.deepEqual(b.counts(), adopted ? {delivered: 1, failed: 0, pending: 1} : {delivered: 0, failed: 0, pending: 1})
        assert.equal(b.nextDue(new Set()), adopted ? 1002 : 1002)
      })

      it('transactions: rolled back when the function throws; a nested one is a savepoint', async () => {
        const store = await openStore()
        const db = store.sql
        db.exec('CREATE TABLE t (name TEXT NOT NULL)')
        assert.throws(() =>
          db.transaction(() => {
            db.run('INSERT INTO t (name) VALUES (?)', ['lost'])
            throw new Error('boom')
          }), /boom/)
        db.transaction(() => {
          db.run('INSERT INTO t (name) VALUES (?)', ['outer'])
          assert.throws(() =>
            db.transaction(() => {
              db.run('INSERT INTO t (name) VALUES (?)', ['inner'])
              throw new Error('inner boom')
            }), /inner boom/)
          db.transaction(() => db.run('INSERT INTO t (name) VALUES (?)', ['kept']))
        })
        assert.deepEqual(db.all<{name: string}>('SELECT name FROM t ORDER BY name').map((r) => r.name), ['kept', 'outer'])
        // A ? inside a literal is text, not a placeholder.
        assert.deepEqual(db.get("SELECT 'why?' AS q, ? AS p", ['x']), {p: 'x', q: 'why?'})
      })

      it('migrations: recorded once; a second run applies nothing', async () => {
        const target = await engine.fresh()
        JobStore.open(target).close()
        const store = JobStore.open(target)
        opened.push(store)
        assert.deepEqual(appliedMigrations(store.sql).map((m) => [m.version, m.name]), MIGRATIONS.map((m) => [m.version, m.name]))
        assert.deepEqual(applyMigrations(store.sql, MIGRATIONS), [])
      })

      it('listen/notify: the listener runs after notify, asynchronously; a notify inside a rolled-back transaction is not delivered', async () => {
        const store = await openStore()
        const db = store.sql
        let woken = 0
        const stop = db.listen('h2k_test', () => woken++)
        db.notify('h2k_test')
        assert.equal(woken, 0, 'never inside the notifier')
        await waitFor(() => woken === 1)
        if (engine.name === 'postgres') {
          assert.throws(() =>
            db.transaction(() => {
              db.notify('h2k_test')
              throw new Error('rolled back')
            }))
          await new Promise((resolve) => setTimeout(resolve, 300))
          assert.equal(woken, 1)
        }
        stop()
        db.notify('h2k_test')
        await new Promise((resolve) => setTimeout(resolve, 200))
        assert.equal(woken, 1, 'not after unlisten')
      })
    })
  }

  describe('postgres only', () => {
    async function freshDb(overrides = {}): Promise<PostgresDb> {
      const db = PostgresDb.open(pg().settings(await pg().createDatabase(), overrides))
      opened.push(db)
      return db
    }

    it('the PostgreSQL schema has the tables and columns of the SQLite one (plus seq standing in for rowid), and the same indexes', async () => {
      const sqlite = JobStore.open({sqlitePath: join(temp.dir, `${randomUUID()}.db`)})
      const postgres = JobStore.open({postgres: pg().settings(await pg().createDatabase()), sqlitePath: join(temp.dir, 'unused.db')})
      opened.push(sqlite, postgres)
      const sqliteTables = sqlite.sql.all<{name: string}>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").map((t) => t.name)
      const postgresTables = postgres.sql.all<{name: string}>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name").map((t) => t.name)
      assert.deepEqual(postgresTables, sqliteTables)
      for (const table of sqliteTables) {
        const sqliteColumns = sqlite.sql.all<{name: string}>('SELECT name FROM pragma_table_info(?) ORDER BY name', [table]).map((c) => c.name)
        const postgresColumns = postgres.sql.all<{name: string}>("SELECT column_name AS name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ? ORDER BY column_name", [table]).map((c) => c.name).filter((c) => !(c === 'seq' && ['jobs', 'notification_outbox'].includes(table)))
        assert.deepEqual(postgresColumns, sqliteColumns, table)
      }
      const sqliteIndexes = sqlite.sql.all<{name: string}>("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name").map((i) => i.name)
      const postgresIndexes = new Set(postgres.sql.all<{name: string}>("SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'").map((i) => i.name))
      assert.deepEqual(sqliteIndexes.filter((name) => !postgresIndexes.has(name)), [])
    })

    it('listen/notify reaches another connection (another daemon)', async () => {
      const name = await pg().createDatabase()
      const listener = PostgresDb.open(pg().settings(name))
      const notifier = PostgresDb.open(pg().settings(name))
      opened.push(listener, notifier)
      let woken = 0
      listener.listen('h2k_jobs', () => woken++)
      notifier.transaction(() => notifier.notify('h2k_jobs'))
      await waitFor(() => woken === 1)
    })

    it('two processes migrating one fresh store at once: each migration applied exactly once', async () => {
      const settings = pg().settings(await pg().createDatabase())
      const at = String(Date.now() + 1500)
      const [a, b] = await Promise.all([storeChild('migrate', settings, {H2K_TEST_AT: at}), storeChild('migrate', settings, {H2K_TEST_AT: at})])
      const versions = [...(JSON.parse(a) as number[]), ...(JSON.parse(b) as number[])].sort((x, y) => x - y)
      assert.deepEqual(versions, MIGRATIONS.map((m) => m.version), `each version by one process: ${a} / ${b}`)
      const db = PostgresDb.open(settings)
      opened.push(db)
      assert.equal(db.get<{n: number}>('SELECT COUNT(*) AS n FROM schema_migrations')!.n, MIGRATIONS.length)
    })

    it('the server restarted between two statements (down for less than statement_timeout): the second waits for it and succeeds', async () => {
      const db = await freshDb({connectTimeoutMs: 30_000, statementTimeoutMs: 30_000})
      db.exec('CREATE TABLE t (n INTEGER)')
      db.run('INSERT INTO t (n) VALUES (?)', [1])
      await pg().restart()
      db.run('INSERT INTO t (n) VALUES (?)', [2])
      // Down for a while: this process is blocked in the statement; another process starts the server.
      await pg().stopServer()
      const started = Date.now()
      const later = pg().startServerAfter(1500)
      try {
        db.run('INSERT INTO t (n) VALUES (?)', [3])
      } finally {
        await later.done
      }
      assert.ok(Date.now() - started >= 1400, 'it waited for the server')
      assert.deepEqual(db.all<{n: number}>('SELECT n FROM t ORDER BY n').map((r) => r.n), [1, 2, 3])
      // Listening goes on after the restart (the LISTEN connection is made again).
      let woken = 0
      db.listen('h2k_after', () => woken++)
      await pg().restart()
      const other = PostgresDb.open(pg().settings(db.location.split('/').at(-1)!))
      opened.push(other)
      await waitFor(() => {
        other.notify('h2k_after')
        return woken > 0
      })
    })

    it('its connections terminated by the server (pg_terminate_backend): the next statements run on new ones, listening goes on', async () => {
      const db = await freshDb()
      db.exec('CREATE TABLE t (n INTEGER)')
      let woken = 0
      db.listen('h2k_terminated', () => woken++)
      const database = db.location.split('/').at(-1)!
      assert.ok(Number(await pg().psql(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '${database}' AND usename = 'h2k'`, 'postgres')) >= 2)
      db.run('INSERT INTO t (n) VALUES (?)', [1])
      db.transaction(() => db.run('INSERT INTO t (n) VALUES (?)', [2]))
      assert.deepEqual(db.all<{n: number}>('SELECT n FROM t ORDER BY n').map((r) => r.n), [1, 2])
      // A wake-up after the LISTEN connection came back (a NOTIFY may have been missed meanwhile), then real ones again.
      await waitFor(() => woken > 0)
      const before = woken
      await waitFor(() => {
        db.notify('h2k_terminated')
        return woken > before
      })
    })

    it('the server stopped inside a transaction: H2K_STORE_UNAVAILABLE, nothing of it written, the connection usable again once the server is back', async () => {
      const db = await freshDb({connectTimeoutMs: 20_000, statementTimeoutMs: 20_000})
      db.exec('CREATE TABLE t (n INTEGER)')
      try {
        assert.throws(() =>
          db.transaction(() => {
            db.run('INSERT INTO t (n) VALUES (?)', [1])
            pg().stopServerSync()
            db.run('INSERT INTO t (n) VALUES (?)', [2])
          }), (error: unknown) => isCode('H2K_STORE_UNAVAILABLE')(error) && /not repeated/.test((error as Error).message))
      } finally {
        await pg().startServer()
      }
      await reachable(db)
      assert.deepEqual(db.all('SELECT n FROM t'), [], 'the first insert was rolled back with its transaction')
      db.transaction(() => db.run('INSERT INTO t (n) VALUES (?)', [3]))
      assert.deepEqual(db.all<{n: number}>('SELECT n FROM t').map((r) => r.n), [3])
    })

    it('the connection lost inside a nested transaction: the outer one cannot go on outside it, even once the server is back; nothing is written', async () => {
      const db = await freshDb({connectTimeoutMs: 20_000, statementTimeoutMs: 20_000})
      db.exec('CREATE TABLE t (n INTEGER)')
      const unavailable = isCode('H2K_STORE_UNAVAILABLE')
      try {
        assert.throws(() =>
          db.transaction(() => {
            db.run('INSERT INTO t (n) VALUES (?)', [1])
            const inner = catching(() =>
              db.transaction(() => {
                db.run('INSERT INTO t (n) VALUES (?)', [2])
                pg().stopServerSync()
                db.run('INSERT INTO t (n) VALUES (?)', [3])
              }))
            assert.ok(unavailable(inner), String(inner))
            pg().startServerSync()
            // The caller goes on regardless: refused, never run on a new connection outside the transaction.
            assert.throws(() => db.run('INSERT INTO t (n) VALUES (?)', [4]), unavailable)
          }), unavailable)
      } finally {
        if (Number(await pg().psql('SELECT 1').catch(() => '0')) !== 1) await pg().startServer()
      }
      await reachable(db)
      assert.deepEqual(db.all('SELECT n FROM t'), [])
      db.run('INSERT INTO t (n) VALUES (?)', [5])
      assert.deepEqual(db.all<{n: number}>('SELECT n FROM t').map((r) => r.n), [5])
    })

    it('job log lines while the server is down: the first waits statement_timeout and fails, the next ones are dropped at once for a while, then written again', async () => {
      const database = await pg().createDatabase()
      const store = JobStore.open({postgres: pg().settings(database, {statementTimeoutMs: 600}), sqlitePath: join(temp.dir, 'unused.db')})
      opened.push(store)
      store.insertJob(newJob('a'))
      let now = 1_000_000
      const log = new JobLogStore(store.sql, () => now)
      const line = (message: string) => ({at: 't', event: 'job:x', fields: {}, level: 'info', message})
      log.append('a', line('before'))
      await pg().stopServer()
      try {
        let started = Date.now()
        assert.throws(() => log.append('a', line('lost')), isCode('H2K_STORE_UNAVAILABLE'))
        assert.ok(Date.now() - started >= 500, 'the first line waited for the server')
        started = Date.now()
        log.append('a', line('dropped'))
        assert.ok(Date.now() - started < 100, 'the next line is not waited for')
      } finally {
        await pg().startServer()
      }
      await reachable(store.sql)
      now += 60_000
      log.append('a', line('after'))
      assert.deepEqual(log.lines('a').map((l) => l.message), ['before', 'after'])
    })

    it('an unreachable server: H2K_STORE_UNAVAILABLE after connect_timeout; the password is never in the location or a message', async () => {
      const password = pg().password
      const withPassword = PostgresDb.open({...pg().settings(), password: undefined, url: pg().urlWithPassword})
      opened.push(withPassword)
      assert.equal(withPassword.location, pg().url)
      assert.ok(!withPassword.location.includes(password))
      const refused = (() => {
        try {
          withPassword.get('SELECT * FROM no_such_table')
        } catch (error) {
          return error as Error
        }
        return undefined
      })()
      assert.ok(refused && !refused.message.includes(password))

      const wrong = 'Wr0ng-Passw0rd-Never-Shown'
      const denied = catching(() => PostgresDb.open({...pg().settings(), password: wrong}))
      assert.ok(isCode('H2K_STORE_UNAVAILABLE')(denied), String(denied))
      assert.ok(!(denied as Error).message.includes(wrong) && !JSON.stringify((denied as H2KError).details).includes(wrong), (denied as Error).message)

      const started = Date.now()
      const closedPort = catching(() => PostgresDb.open({...pg().settings(), connectTimeoutMs: 800, url: `postgres://h2k:${wrong}@127.0.0.1:1/h2k`}))
      assert.ok(isCode('H2K_STORE_UNAVAILABLE')(closedPort), String(closedPort))
      assert.ok(Date.now() - started >= 700, 'it retried until connect_timeout')
      assert.ok(Date.now() - started < 800 + 6000, 'and not much longer')
      assert.match((closedPort as Error).message, /postgres:\/\/h2k@127\.0\.0\.1:1\/h2k/)
      assert.ok(!(closedPort as Error).message.includes(wrong))
    })

    it('TLS: require encrypts (checking the chain only given ca_file), verify-ca checks the chain not the name, verify-full both; without TLS or the CA the server is refused at once; a shared key_file is refused', async () => {
      const tls = await PgCluster.start({tls: true})
      try {
        const encrypted = (db: PostgresDb): boolean => db.get<{ssl: number}>('SELECT CASE WHEN ssl THEN 1 ELSE 0 END AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')!.ssl === 1
        // The server's certificate names 127.0.0.1 and localhost; ::ffff:127.0.0.1 reaches the same server under another name.
        const otherName = `postgres://h2k@[::ffff:127.0.0.1]:${tls.port}/h2k`
        const otherCa = join(temp.dir, 'other-ca.crt')
        await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(temp.dir, 'other-ca.key'), '-out', otherCa, '-days', '2', '-subj', '/CN=other-ca'])
        const accepted: Array<{ssl: PostgresTlsSettings; url?: string}> = [
          {ssl: {mode: 'require'}},
          {ssl: {mode: 'require'}, url: otherName},
          {ssl: {caFile: tls.caFile, mode: 'require'}, url: otherName},
          {ssl: {caFile: tls.caFile, mode: 'verify-ca'}, url: otherName},
          {ssl: {caFile: tls.caFile, mode: 'verify-full'}},
        ]
        for (const c of accepted) {
          const db = PostgresDb.open(tls.settings('h2k', {ssl: c.ssl, ...(c.url === undefined ? {} : {url: c.url})}))
          opened.push(db)
          assert.ok(encrypted(db), `${c.ssl.mode} ${c.url ?? ''}`)
        }
        const refusedCases: Array<{ssl: PostgresTlsSettings; url?: string}> = [
          {ssl: {mode: 'disable'}},
          {ssl: {mode: 'verify-full'}},
          {ssl: {mode: 'verify-ca'}},
          {ssl: {caFile: otherCa, mode: 'require'}},
          {ssl: {caFile: otherCa, mode: 'verify-ca'}},
          {ssl: {caFile: tls.caFile, mode: 'verify-full'}, url: otherName},
        ]
        for (const c of refusedCases) {
          const started = Date.now()
          const refused = catching(() => PostgresDb.open(tls.settings('h2k', {connectTimeoutMs: 20_000, ssl: c.ssl, ...(c.url === undefined ? {} : {url: c.url})})))
          assert.ok(isCode('H2K_STORE_UNAVAILABLE')(refused), `${c.ssl.mode} ${c.url ?? ''}: ${String(refused)}`)
          assert.ok(Date.now() - started < 10_000, `${c.ssl.mode}: refused, not waited for`)
          assert.ok(!(refused as Error).message.includes(tls.password))
        }
        const key = join(temp.dir, 'client.key')
        writeFileSync(key, 'not read\n', {mode: 0o640})
        chmodSync(key, 0o640)
        const shared = catching(() => PostgresDb.open(tls.settings('h2k', {ssl: {caFile: tls.caFile, certFile: tls.caFile, keyFile: key, mode: 'verify-full'}})))
        assert.ok(isCode('H2K_USAGE')(shared) && /store\.ssl\.key_file/.test((shared as Error).message), String(shared))
      } finally {
        for (const handle of opened.splice(0)) handle.close()
        await tls.stop()
      }
    })

    it('the Unix socket URL (?host=) works', async () => {
      const db = PostgresDb.open({...pg().settings(), url: pg().socketUrl})
      opened.push(db)
      assert.deepEqual(db.get('SELECT 1 AS one'), {one: 1})
      assert.ok(db.location.includes(`?host=${pg().socketDir}`))
    })

    it('backup and vacuum of a PostgreSQL store are refused with what to use instead (H2K_USAGE), not a crash', async () => {
      const store = JobStore.open({postgres: pg().settings(await pg().createDatabase()), sqlitePath: join(temp.dir, 'unused.db')})
      opened.push(store)
      assert.throws(() => store.vacuum(), (error: unknown) => isCode('H2K_USAGE')(error) && /VACUUM/.test((error as Error).message))
      await assert.rejects(store.backup(join(temp.dir, 'copy.db')), (error: unknown) => isCode('H2K_USAGE')(error) && /pg_dump/.test((error as Error).message))
      assert.ok(store.diskUsage().db > 0)
    })

    it('close() leaves nothing behind: a process that used the store ends by itself', async () => {
      const started = Date.now()
      assert.equal(await storeChild('idle', pg().settings()), 'closed')
      assert.ok(Date.now() - started < 30_000)
    })

    it('the CLI reads a PostgreSQL store named by --config (ctl jobs, dedup list); backup and vacuum refuse it, naming pg_dump / VACUUM', async () => {
      const database = await pg().createDatabase()
      const store = JobStore.open({postgres: pg().settings(database), sqlitePath: join(temp.dir, 'unused.db')})
      opened.push(store)
      store.insertJob(newJob('on-postgres'))
      store.recordProcessed({file_hash: null, file_size: 3, filename: 'seen.raw', job_id: 'on-postgres', output_path: '/out/on-postgres'})
      const dir = join(temp.dir, `cli-${database}`)
      mkdirSync(dir)
      writeFileSync(join(dir, 'password'), `${pg().password}\n`, {mode: 0o600})
      const config = join(dir, 'daemon.yaml')
      writeFileSync(config, [`watch_dir: ${join(dir, 'in')}`, `output_dir: ${join(dir, 'out')}`, 'store:', `  url: postgres://h2k@127.0.0.1:${pg().port}/${database}`, '  password_file: password', ''].join('\n'))
      const env = {HYPER2KVM_STORE_PASSWORD: ''}
      const jobs = await runCli(['ctl', 'jobs', '--config', config, '--json'], {env})
      assert.equal(jobs.code, 0, jobs.stderr)
      assert.deepEqual(jobs.json.jobs.map((j: {id: string}) => j.id), ['on-postgres'])
      const list = await runCli(['dedup', 'list', '--config', config, '--json'], {env})
      assert.equal(list.code, 0, list.stderr)
      assert.match(list.stdout, /seen\.raw/)
      const vacuum = await runCli(['dedup', 'vacuum', '--config', config], {env})
      assert.equal(vacuum.code, 2, vacuum.stderr)
      assert.match(vacuum.stderr, /H2K_USAGE[\s\S]*VACUUM/)
      const backup = await runCli(['ctl', 'backup', '--config', config, '--to', join(dir, 'backups')], {env})
      assert.equal(backup.code, 2, backup.stderr)
      assert.match(backup.stderr, /pg_dump/)
      for (const result of [jobs, list, vacuum, backup]) assert.ok(!`${result.stdout}${result.stderr}`.includes(pg().password), 'the password is never printed')
    })

    it('a daemon whose configuration names a PostgreSQL store keeps its jobs, history and job log there (no jobs.db)', async () => {
      const database = await pg().createDatabase()
      const dir = join(temp.dir, `daemon-${database}`)
      const [inbox, out] = [join(dir, 'in'), join(dir, 'out')]
      mkdirSync(inbox, {recursive: true})
      const config = join(dir, 'daemon.yaml')
      writeFileSync(config, [`watch_dir: ${inbox}`, `output_dir: ${out}`, 'store:', `  url: postgres://h2k@127.0.0.1:${pg().port}/${database}`, '  connect_timeout: 5', ''].join('\n'))
      const daemons: RunningDaemon[] = []
      try {
        const daemon = await startDaemon(['--config', config], out, undefined, {env: {HYPER2KVM_STORE_PASSWORD: pg().password}})
        daemons.push(daemon)
        assert.match(daemon.stderr(), new RegExp(`daemon:start .*store=postgres://h2k@127\\.0\\.0\\.1:${pg().port}/${database}`))
        makePatternedRaw(join(dir, 'disk.raw'), 1024 * 1024, [{length: 4096, offset: 0, pattern: 0x5a}])
        renameSync(join(dir, 'disk.raw'), join(inbox, 'disk.raw'))
        const store = JobStore.open({postgres: pg().settings(database), sqlitePath: join(dir, 'unused.db')}, {readonly: true})
        opened.push(store)
        const job = await until('the job succeeded in PostgreSQL', () => store.jobs({}).find((j) => j.source_path === 'disk.raw' && j.status === 'succeeded'), 60_000, daemon)
        assert.deepEqual(store.historyOf(job.id).map((h) => h.to_status), ['queued', 'running', 'succeeded'])
        assert.ok(new JobLogStore(store.sql).lines(job.id).length > 0, 'its log lines are in the store')
        assert.equal(existsSync(join(out, '.daemon', 'jobs.db')), false, 'no SQLite store beside it')
        assert.ok(!daemon.stderr().includes(pg().password))
      } finally {
        await killAll(daemons)
      }
    })

    /** A store reached through a proxy in another process (this thread blocks in every call): B = statement_timeout. */
    async function throughProxy(statementTimeoutMs: number): Promise<{db: PostgresDb; proxy: RemoteTcpProxy}> {
      const proxy = await RemoteTcpProxy.start({host: '127.0.0.1', port: pg().port})
      proxies.push(proxy)
      const database = await pg().createDatabase()
      const db = PostgresDb.open(pg().settings(database, {statementTimeoutMs, url: `postgres://h2k@127.0.0.1:${proxy.port}/${database}`}))
      opened.push(db)
      return {db, proxy}
    }

    for (const mode of ['blackhole', 'reset'] as const) {
      it(`a partition (${mode}): a call fails with H2K_STORE_UNAVAILABLE within about statement_timeout, the next ones at once; healed, the store works and listeners are woken`, async () => {
        const B = 1500
        const {db, proxy} = await throughProxy(B)
        db.exec('CREATE TABLE t (n INTEGER)')
        db.run('INSERT INTO t (n) VALUES (?)', [0])
        let woken = 0
        db.listen('h2k_partition', () => woken++)
        await proxy.sever(mode)
        woken = 0
        const unavailable = isCode('H2K_STORE_UNAVAILABLE')
        let started = Date.now()
        const first = catching(() => db.run('INSERT INTO t (n) VALUES (?)', [1]))
        const waited = Date.now() - started
        assert.ok(unavailable(first), String(first))
        assert.ok(waited < B + 5000, `bounded by statement_timeout: ${waited} ms`)
        for (const call of [() => db.get('SELECT n FROM t'), () => db.run('INSERT INTO t (n) VALUES (?)', [2]), () => db.transaction(() => db.run('INSERT INTO t (n) VALUES (?)', [3]))]) {
          started = Date.now()
          assert.throws(call, unavailable)
          assert.ok(Date.now() - started < B / 2, `failed at once while severed: ${Date.now() - started} ms`)
        }
        await proxy.heal()
        await reachable(db)
        db.run('INSERT INTO t (n) VALUES (?)', [4])
        const rows = db.all<{n: number}>('SELECT n FROM t ORDER BY n').map((r) => r.n)
        assert.deepEqual(rows.filter((n) => n !== 1), [0, 4], 'nothing refused at once was written')
        await waitFor(() => woken > 0, 20_000)
        const before = woken
        await waitFor(() => {
          db.notify('h2k_partition')
          return woken > before
        }, 20_000)
      })
    }

    it('open() on a blackholed road: H2K_STORE_UNAVAILABLE within about connect_timeout (each connection attempt bounded by the time left)', async () => {
      const proxy = await RemoteTcpProxy.start({host: '127.0.0.1', port: pg().port})
      proxies.push(proxy)
      await proxy.sever('blackhole')
      const started = Date.now()
      const failed = catching(() => PostgresDb.open(pg().settings('h2k', {connectTimeoutMs: 1500, url: `postgres://h2k@127.0.0.1:${proxy.port}/h2k`})))
      const waited = Date.now() - started
      assert.ok(isCode('H2K_STORE_UNAVAILABLE')(failed), String(failed))
      assert.ok(waited >= 1400 && waited < 1500 + 6000, `bounded by connect_timeout: ${waited} ms`)
    })

    it('close() while the road to the server is blackholed: bounded, never throws, leaves nothing behind', async () => {
      const {db, proxy} = await throughProxy(1000)
      db.get('SELECT 1')
      db.listen('h2k_closing', () => undefined)
      await proxy.sever('blackhole')
      const started = Date.now()
      db.close()
      assert.ok(Date.now() - started < 10_000, `close took ${Date.now() - started} ms`)
      assert.throws(() => db.get('SELECT 1'), isCode('H2K_STORE_FAILED'))
    })

    it('the driver thread dying while it loads: open() fails with H2K_STORE_UNAVAILABLE at once, saying why, instead of hanging', async () => {
      process.env.HYPER2KVM_TEST_PG_THREAD_FAULT = 'load'
      const started = Date.now()
      let failed: unknown
      try {
        failed = catching(() => opened.push(PostgresDb.open(pg().settings('h2k', {connectTimeoutMs: 60_000})))) // closed after, should it open
      } finally {
        delete process.env.HYPER2KVM_TEST_PG_THREAD_FAULT
      }
      assert.ok(isCode('H2K_STORE_UNAVAILABLE')(failed), String(failed))
      assert.match((failed as Error).message, /driver thread failed: loading the driver failed/)
      assert.ok(Date.now() - started < 30_000, `not waited for connect_timeout: ${Date.now() - started} ms`)
      const db = PostgresDb.open(pg().settings())
      opened.push(db)
      assert.deepEqual(db.get('SELECT 1 AS one'), {one: 1})
    })

    /** A store whose driver thread crashes on its `n`-th request (a bug in it, an out-of-memory…). */
    async function crashingAt(n: number): Promise<PostgresDb> {
      const database = await pg().createDatabase()
      process.env.HYPER2KVM_TEST_PG_THREAD_FAULT = `crash-at:${n}`
      try {
        const db = PostgresDb.open(pg().settings(database))
        opened.push(db)
        return db
      } finally {
        delete process.env.HYPER2KVM_TEST_PG_THREAD_FAULT
      }
    }

    it('the driver thread dying after the open: that call fails with H2K_STORE_UNAVAILABLE, the next one runs on a new thread, which listens again and wakes the listeners', async () => {
      // Requests: 1 connect, 2 listen, 3 create; the 4th crashes the thread.
      const db = await crashingAt(4)
      let woken = 0
      db.listen('h2k_respawn', () => woken++)
      db.exec('CREATE TABLE t (n INTEGER)')
      const crashed = catching(() => db.get('SELECT 1'))
      assert.ok(isCode('H2K_STORE_UNAVAILABLE')(crashed), String(crashed))
      assert.match((crashed as Error).message, /driver thread failed: crashed on request 4/)
      db.run('INSERT INTO t (n) VALUES (?)', [1])
      assert.deepEqual(db.all<{n: number}>('SELECT n FROM t').map((r) => r.n), [1])
      await waitFor(() => woken > 0, 20_000)
      const before = woken
      await waitFor(() => {
        db.notify('h2k_respawn')
        return woken > before
      }, 20_000)
    })

    it('the driver thread dying inside a transaction: the transaction is over, its later statements are refused (never run outside it on the new thread)', async () => {
      // Requests: 1 connect, 2 create, 3 begin, 4 the first insert (runs), 5 the second insert crashes the thread.
      const db = await crashingAt(5)
      db.exec('CREATE TABLE t (n INTEGER)')
      const unavailable = isCode('H2K_STORE_UNAVAILABLE')
      assert.throws(() =>
        db.transaction(() => {
          db.run('INSERT INTO t (n) VALUES (?)', [1])
          assert.throws(() => db.run('INSERT INTO t (n) VALUES (?)', [2]), unavailable)
          assert.throws(() => db.run('INSERT INTO t (n) VALUES (?)', [3]), (error: unknown) => unavailable(error) && /transaction was stopped/.test((error as Error).message))
        }), unavailable)
      await waitFor(async () => Number(await pg().psql(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '${db.location.split('/').at(-1)!}' AND state LIKE 'idle in transaction%'`, 'postgres')) === 0, 20_000)
      assert.deepEqual(db.all('SELECT n FROM t'), [], 'nothing of it committed')
      db.transaction(() => db.run('INSERT INTO t (n) VALUES (?)', [4]))
      assert.deepEqual(db.all<{n: number}>('SELECT n FROM t').map((r) => r.n), [4])
    })

    it('a closed connection refuses statements (H2K_STORE_FAILED), never hangs', async () => {
      const db = PostgresDb.open(pg().settings())
      db.close()
      db.close()
      assert.equal(db.open, false)
      assert.throws(() => db.get('SELECT 1'), isCode('H2K_STORE_FAILED'))
    })
  })
})

/** Until `db` answers again (after an outage its breaker fails calls at once until its background probe gets through). */
async function reachable(db: {get(sql: string): unknown}, ms = 20_000): Promise<void> {
  await waitFor(() => {
    try {
      db.get('SELECT 1')
      return true
    } catch (error) {
      if (error instanceof H2KError && error.code === 'H2K_STORE_UNAVAILABLE') return false
      throw error
    }
  }, ms)
}

function catching(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  return undefined
}

async function waitFor(condition: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

