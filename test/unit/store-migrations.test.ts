import assert from 'node:assert/strict'
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'

import Database from 'better-sqlite3'

import {appliedMigrations, applyMigrations} from '../../src/daemon/migrations/apply-migrations.js'
import {MIGRATIONS} from '../../src/daemon/migrations/index.js'
import {JobStore, storePath} from '../../src/daemon/store.js'
import {SqliteDb} from '../../src/store/sqlite-db.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** The schema stores were written with before migrations existed (src/daemon/store.ts, SCHEMA, before #13). */
const OLD_SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, vm_path TEXT NOT NULL, source_path TEXT NOT NULL, output_path TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued','running','retry_wait','succeeded','failed','duplicate')),
  created_at TEXT NOT NULL, started_at TEXT, completed_at TEXT, progress_json TEXT, result_json TEXT, error TEXT,
  definition_json TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER, intake_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_intake ON jobs(intake_id);
CREATE TABLE IF NOT EXISTS job_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  at TEXT NOT NULL, from_status TEXT, to_status TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS job_history_job ON job_history(job_id);
CREATE TABLE IF NOT EXISTS processed_files (
  id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT NOT NULL, file_size INTEGER NOT NULL, file_hash TEXT,
  processed_at TEXT NOT NULL, job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL, output_path TEXT
);
CREATE INDEX IF NOT EXISTS processed_files_key ON processed_files(filename, file_size);
`

/** An old store with `n` jobs (and their history and a processed file each), as an earlier build wrote it. */
function writeOldStore(out: string, n: number, options: {withoutIntakeId?: boolean} = {}): void {
  mkdirSync(join(out, '.daemon'), {recursive: true})
  const db = new Database(storePath(out))
  db.pragma('journal_mode = WAL')
  db.exec(options.withoutIntakeId ? OLD_SCHEMA.replace(', intake_id TEXT', '').replace('CREATE INDEX IF NOT EXISTS jobs_intake ON jobs(intake_id);', '') : OLD_SCHEMA)
  for (let i = 0; i < n; i++) {
    const id = `old${i}`
    const cols = options.withoutIntakeId ? '' : ', intake_id'
    const vals = options.withoutIntakeId ? '' : ', ?'
    db.prepare(`INSERT INTO jobs (id, name, vm_path, source_path, output_path, status, created_at, definition_json, attempts${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?${vals})`).run(
      id, `vm${i}`, `/in/vm${i}.raw`, `vm${i}.raw`, `/out/vm${i}`, i % 2 === 0 ? 'succeeded' : 'failed', `2026-01-01T00:00:0${i}.000Z`, JSON.stringify({filename: `vm${i}.raw`, settings: {}, size: 1}), 1, ...(options.withoutIntakeId ? [] : [id]),
    )
    db.prepare('INSERT INTO job_history (job_id, at, from_status, to_status, detail) VALUES (?, ?, NULL, ?, ?)').run(id, '2026-01-01T00:00:00.000Z', 'queued', 'claimed')
    db.prepare('INSERT INTO processed_files (filename, file_size, file_hash, processed_at, job_id, output_path) VALUES (?, 1, NULL, ?, ?, ?)').run(`vm${i}.raw`, '2026-01-01T00:00:00.000Z', id, `/out/vm${i}`)
  }
  db.close()
}

describe('job store migrations', () => {
  let temp: ReturnType<typeof makeTempDir>
  beforeEach(() => (temp = makeTempDir('h2k-migrations-')))
  afterEach(() => temp.cleanup())

  it('a store written by the pre-migration build is adopted: version 1 and 2 recorded, every row kept, new statuses and columns usable', () => {
    const out = join(temp.dir, 'out')
    writeOldStore(out, 4)
    const store = JobStore.open(out)
    try {
      // Every migration of index.ts (1 baseline, 2 job service, then the other parts' own).
      assert.deepEqual(appliedMigrations(store.sql).map((m) => [m.version, m.name]), MIGRATIONS.map((m) => [m.version, m.name]))
      assert.deepEqual(appliedMigrations(store.sql).slice(0, 2).map((m) => [m.version, m.name]), [[1, 'baseline'], [2, 'job service']])
      assert.equal(store.schemaVersion, MIGRATIONS.at(-1)!.version)
      const rows = store.jobs({})
      assert.deepEqual(rows.map((r) => [r.id, r.status, r.origin, r.intake_id]).sort(), [['old0', 'succeeded', 'drop', 'old0'], ['old1', 'failed', 'drop', 'old1'], ['old2', 'succeeded', 'drop', 'old2'], ['old3', 'failed', 'drop', 'old3']])
      assert.equal(store.historyOf('old1').length, 1)
      assert.equal(store.processedFiles().length, 4)
      // The rebuilt table is the one the history and processed_files reference: deleting a job cascades.
      store.transition('old1', 'dead', 'migrated test')
      assert.equal(store.job('old1')!.status, 'dead')
      assert.equal(store.deleteJobs(['old1']), 1)
      assert.deepEqual(store.historyOf('old1'), [])
      assert.equal(store.processedFiles().find((p) => p.filename === 'vm1.raw')!.job_id, null)
      assert.deepEqual((store.sql as SqliteDb).raw.pragma('foreign_key_check'), [])
      assert.equal(store.foreignKeys, true)
    } finally {
      store.close()
    }
  })

  it('a store older than intake_id gets the column (each old job its own claim) through the baseline migration', () => {
    const out = join(temp.dir, 'out')
    writeOldStore(out, 2, {withoutIntakeId: true})
    const store = JobStore.open(out)
    try {
      assert.deepEqual(store.jobs({}).map((r) => r.intake_id).sort(), ['old0', 'old1'])
    } finally {
      store.close()
    }
  })

  it('migrations run once: reopening applies nothing, a second runner on the same database applies nothing', () => {
    const out = join(temp.dir, 'out')
    JobStore.open(out).close()
    const before = JobStore.open(out)
    const applied = appliedMigrations(before.sql)
    before.close()
    const db = SqliteDb.open(storePath(out))
    try {
      assert.deepEqual(applyMigrations(db, MIGRATIONS), [])
      assert.deepEqual(appliedMigrations(db), applied)
      assert.equal(db.get<{n: number}>('SELECT COUNT(*) AS n FROM schema_migrations')?.n, MIGRATIONS.length)
    } finally {
      db.close()
    }
  })

  it('a fresh store refuses a status outside the list and an origin outside drop/api/schedule', () => {
    const out = join(temp.dir, 'out')
    const store = JobStore.open(out)
    try {
      const row = store.insertJob({definition_json: '{}', id: 'a', name: 'a', output_path: '/o/a', source_path: 'a.raw', vm_path: '/i/a.raw'})
      assert.equal(row.origin, 'drop')
      assert.throws(() => store.transition('a', 'exploded' as never), /CHECK constraint/)
      assert.throws(() => store.insertJob({definition_json: '{}', id: 'b', name: 'b', origin: 'ftp' as never, output_path: '/o/b', source_path: 'b.raw', vm_path: '/i/b.raw'}), /CHECK constraint/)
    } finally {
      store.close()
    }
  })
})

describe('job store pages and relations', () => {
  let temp: ReturnType<typeof makeTempDir>
  beforeEach(() => (temp = makeTempDir('h2k-store-pages-')))
  afterEach(() => temp.cleanup())

  it('jobsPage walks every job once, newest first, with an opaque cursor; a status filter pages too; a forged cursor is H2K_USAGE', () => {
    const store = JobStore.open(join(temp.dir, 'out'))
    try {
      for (let i = 0; i < 23; i++) store.insertJob({definition_json: '{}', id: `j${String(i).padStart(2, '0')}`, name: `n${i}`, output_path: `/o/${i}`, source_path: `${i}.raw`, status: i % 3 === 0 ? 'duplicate' : 'queued', vm_path: `/i/${i}`})
      const seen: string[] = []
      let cursor: string | undefined
      let pages = 0
      for (;;) {
        const page = store.jobsPage({limit: 5, ...(cursor ? {cursor} : {})})
        pages++
        seen.push(...page.jobs.map((j) => j.id))
        if (page.nextCursor === null) break
        assert.match(page.nextCursor, /^[\w-]+$/, 'base64url')
        cursor = page.nextCursor
      }
      assert.equal(pages, 5)
      assert.deepEqual(seen, store.jobs({}).map((j) => j.id), 'same order as the newest-first list, nothing twice or missing')
      assert.equal(new Set(seen).size, 23)
      const dups = store.jobsPage({limit: 500, status: 'duplicate'})
      assert.equal(dups.jobs.length, 8)
      assert.equal(dups.nextCursor, null)
      assert.throws(() => store.jobsPage({cursor: 'not-a-cursor', limit: 5}), (e: {code?: string}) => e.code === 'H2K_USAGE')
      assert.throws(() => store.jobsPage({limit: 0}), (e: {code?: string}) => e.code === 'H2K_USAGE')
      assert.throws(() => store.jobsPage({limit: 501}), (e: {code?: string}) => e.code === 'H2K_USAGE')
    } finally {
      store.close()
    }
  })

  it('dependencies, attempts (numbered for the whole life of a job) and wait reasons round-trip', () => {
    const store = JobStore.open(join(temp.dir, 'out'))
    try {
      store.insertJob({definition_json: '{}', id: 'p', name: 'p', output_path: '/o/p', source_path: 'p.raw', vm_path: '/i/p'})
      store.insertJob({definition_json: '{}', depends_on: ['p'], id: 'c', name: 'c', output_path: '/o/c', source_path: 'c.raw', vm_path: '/i/c'})
      assert.deepEqual(store.dependenciesOf('c'), ['p'])
      assert.deepEqual(store.dependentsOf('p'), ['c'])
      assert.equal(store.startAttempt('p'), 1)
      store.endAttempt('p', 1, 'retry', {code: 'H2K_TOOL_FAILED'})
      assert.equal(store.startAttempt('p'), 2)
      store.endAttempt('p', 2, 'succeeded')
      assert.deepEqual(store.attemptsOf('p').map((a) => [a.attempt, a.outcome, a.error_json && JSON.parse(a.error_json).code]), [[1, 'retry', 'H2K_TOOL_FAILED'], [2, 'succeeded', null]])
      store.setWait('c', null, 'waiting for p (queued)')
      assert.equal(store.job('c')!.wait_reason, 'waiting for p (queued)')
      store.setWait('c', 1234, 'window')
      assert.deepEqual([store.job('c')!.not_before, store.job('c')!.wait_reason], [1234, 'window'])
    } finally {
      store.close()
    }
  })
})
