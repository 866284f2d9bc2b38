import {existsSync, mkdirSync, statSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError, withMappedErrors} from '../errors/map-foreign-error.js'
import {applyMigrations, appliedMigrations} from './migrations/apply-migrations.js'
import {decodeCursor, encodeCursor} from './job-cursor.js'
import type {AttemptRow, HistoryRow, JobPage, JobRow, JobStatus, NewJobRow, ProcessedFileRow, ProcessedStats} from './job-row.js'
import {MIGRATIONS} from './migrations/index.js'
import {stateDir} from './state-paths.js'
import type {SqlDb, SqlValue} from '../store/sql-db.js'
import type {SqliteDb} from '../store/sqlite-db.js'
import {openSqlDb, type StoreTarget, targetLocation} from '../store/store-target.js'

export * from './job-row.js'

export {stateDir}
export const storePath = (outputDir: string): string => join(stateDir(outputDir), 'jobs.db')


/**
 * The durable job store on one SqlDb (SQLite: WAL, foreign keys on; or PostgreSQL, shared by several
 * daemons): `jobs`, `job_history` (one row per status transition) and `processed_files` (deduplication).
 * Every write is one transaction. PostgreSQL's `jobs.seq` stands in for SQLite's rowid (insertion order)
 * and is never part of a returned row.
 */
export class JobStore {
  /** Where the data lives: the SQLite file, or the PostgreSQL URL without its password. */
  readonly path: string
  private readonly db: SqlDb
  /** Whether migration 2 (dependencies, attempts) is in: an old store opened read-only may predate it. */
  private jobService: boolean | undefined

  private constructor(
    path: string,
    db: SqlDb,
    /** What was opened (maintenance commands open it again, read-write). */
    readonly target: StoreTarget,
  ) {
    this.path = path
    this.db = db
  }

  /** The engine holding the store. */
  get engine(): SqlDb['engine'] {
    return this.db.engine
  }

  /**
   * Open the store at `target` (or, given an output directory, its SQLite store `<dir>/.daemon/jobs.db`):
   * migrations are applied unless read-only. Read-only, a missing SQLite store is H2K_DAEMON_NOT_RUNNING; a
   * PostgreSQL server that cannot be reached is H2K_STORE_UNAVAILABLE (after connect_timeout; a later call after statement_timeout).
   */
  static open(target: StoreTarget | string, options: {readonly?: boolean} = {}): JobStore {
    const resolved = typeof target === 'string' ? {sqlitePath: storePath(target)} : target
    const path = targetLocation(resolved)
    try {
      if (!options.readonly && resolved.postgres === undefined) mkdirSync(dirname(resolved.sqlitePath), {mode: 0o700, recursive: true})
      const db = openSqlDb(resolved, options)
      try {
        // Numbered migrations (migrations/index.ts): a store of an earlier build is adopted and brought up to date.
        if (!options.readonly) applyMigrations(db, MIGRATIONS)
        if (db.engine === 'sqlite') (db as SqliteDb).raw.pragma('foreign_keys = ON')
      } catch (error) {
        db.close()
        throw error
      }
      return new JobStore(path, db, resolved)
    } catch (error) {
      // Read-only, a missing store is no daemon: SQLite's CANTOPEN, or better-sqlite3's own check that .daemon/ exists.
      if (resolved.postgres === undefined && options.readonly && ((error as {code?: string}).code === 'SQLITE_CANTOPEN' || !existsSync(path))) {
        throw new H2KError('H2K_DAEMON_NOT_RUNNING', `No job store at ${path}: no daemon ever ran with this output directory.`, {
          details: {path},
          suggestions: ['Pass the daemon\'s --output-dir (or the --config it was started with).'],
        })
      }
      throw mapForeignError(error, {operation: 'Cannot open the job store', path})
    }
  }

  private guard<T>(what: string, fn: () => T): T {
    return withMappedErrors({operation: what, path: this.path}, fn)
  }

  /** A write that changes nothing, in a transaction: throws when the store cannot take writes (readiness). */
  ping(): void {
    this.guard('The job store does not take writes', () => this.db.transaction(() => this.db.run('UPDATE jobs SET id = id WHERE 1 = 0')))
  }

  get journalMode(): string {
    return this.db.engine === 'sqlite' ? String((this.db as SqliteDb).raw.pragma('journal_mode', {simple: true})) : 'postgres'
  }

  get foreignKeys(): boolean {
    return this.db.engine === 'sqlite' ? Number((this.db as SqliteDb).raw.pragma('foreign_keys', {simple: true})) === 1 : true
  }

  close(): void {
    this.db.close()
  }

  /** The connection, for the small store classes of other parts on the same database (their own tables, their own migration). */
  get sql(): SqlDb {
    return this.db
  }

  /** The highest migration applied to this store (0: a store of a build older than migrations, opened read-only). */
  get schemaVersion(): number {
    return this.guard('Cannot read the job store', () => appliedMigrations(this.db).reduce((max, m) => Math.max(max, m.version), 0))
  }

  /** Run `fn` in one transaction (nested calls become savepoints): several writes that stand or fall together. */
  transaction<T>(fn: () => T): T {
    return this.guard('Cannot update the job store', () => this.db.transaction(fn))
  }

  insertJob(job: NewJobRow): JobRow {
    return this.guard('Cannot add a job', () =>
      this.db.transaction(() => {
        const status = job.status ?? 'queued'
        this.db.run('INSERT INTO jobs (id, name, vm_path, source_path, output_path, status, created_at, definition_json, intake_id, origin, schedule_id, request_id, not_before, wait_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [job.id, job.name, job.vm_path, job.source_path, job.output_path, status, new Date().toISOString(), job.definition_json, job.intake_id === undefined ? job.id : job.intake_id, job.origin ?? 'drop', job.schedule_id ?? null, job.request_id ?? null, job.not_before ?? null, job.wait_reason ?? null])
        for (const parent of job.depends_on ?? []) this.db.run('INSERT INTO job_dependencies (job_id, depends_on) VALUES (?, ?) ON CONFLICT DO NOTHING', [job.id, parent])
        this.history(job.id, null, status, job.detail ?? `claimed ${job.source_path}`)
        return this.job(job.id)!
      }),
    )
  }

  private history(jobId: string, from: string | null, to: string, detail?: string): void {
    this.db.run('INSERT INTO job_history (job_id, at, from_status, to_status, detail) VALUES (?, ?, ?, ?, ?)', [jobId, new Date().toISOString(), from, to, detail ?? null])
  }

  /** Move a job to `to`, with a history row; `fields` are other columns to set at the same time. */
  transition(id: string, to: JobStatus, detail?: string, fields: Partial<Omit<JobRow, 'id' | 'status'>> = {}): JobRow {
    return this.guard('Cannot update a job', () =>
      this.db.transaction(() => {
        const current = this.job(id)
        if (!current) throw new H2KError('H2K_INTERNAL', `No job ${id} in the store.`)
        const sets = ['status = ?', ...Object.keys(fields).map((k) => `${k} = ?`)]
        this.db.run(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ?`, [to, ...Object.values(fields), id])
        this.history(id, current.status, to, detail)
        return this.job(id)!
      }),
    )
  }

  setProgress(id: string, progress: unknown): void {
    this.guard('Cannot record progress', () => this.db.run('UPDATE jobs SET progress_json = ? WHERE id = ?', [JSON.stringify(progress), id]))
  }

  job(id: string): JobRow | undefined {
    return this.guard('Cannot read a job', () => jobRow(this.db.get<JobRow>('SELECT * FROM jobs WHERE id = ?', [id])))
  }

  /** Jobs, newest first; a prefix of an id is enough for `job()` lookups through `findJob`. */
  jobs(filter: {status?: string; limit?: number} = {}): JobRow[] {
    return this.guard('Cannot list jobs', () => {
      const where = filter.status ? 'WHERE status = ?' : ''
      const params: SqlValue[] = filter.status ? [filter.status] : []
      const limit = filter.limit === undefined ? '' : ' LIMIT ?'
      if (filter.limit !== undefined) params.push(filter.limit)
      return jobRows(this.db.all<JobRow>(`SELECT * FROM jobs ${where} ORDER BY created_at DESC, ${this.insertion} DESC${limit}`, params))
    })
  }

  /** The job (any status, finished ones included) other than `exceptId` whose output directory is `path`: an output directory belongs to one job. */
  outputPathOwner(path: string, exceptId?: string): string | undefined {
    return this.guard('Cannot read a job', () => (this.db.get('SELECT id FROM jobs WHERE output_path = ? AND id IS DISTINCT FROM ? LIMIT 1', [path, exceptId ?? null]) as {id: string} | undefined)?.id)
  }

  findJob(idOrPrefix: string): JobRow | undefined {
    return this.guard('Cannot read a job', () => {
      const exact = jobRow(this.db.get<JobRow>('SELECT * FROM jobs WHERE id = ?', [idOrPrefix]))
      if (exact) return exact
      // The same on both engines: a prefix matches whatever the case (SQLite's LIKE ignores ASCII case, PostgreSQL's
      // does not: both compare LOWER()), and % _ ! in it are literal characters, not wildcards.
      const prefix = `${idOrPrefix.toLowerCase().replace(/[!%_]/g, '!$&')}%`
      const rows = jobRows(this.db.all<JobRow>("SELECT * FROM jobs WHERE LOWER(id) LIKE ? ESCAPE '!' LIMIT 2", [prefix]))
      return rows.length === 1 ? rows[0] : undefined
    })
  }


  historyOf(id: string): HistoryRow[] {
    return this.guard('Cannot read job history', () => this.db.all('SELECT * FROM job_history WHERE job_id = ? ORDER BY id', [id]) as HistoryRow[])
  }

  /** Every job of one claim. */
  jobsOfIntake(intakeId: string): JobRow[] {
    return this.guard('Cannot list jobs', () => jobRows(this.db.all<JobRow>(`SELECT * FROM jobs WHERE intake_id = ? ORDER BY created_at, ${this.insertion}`, [intakeId])))
  }

  /** Jobs not finished: queued, running (after a crash) and waiting for a retry (oldest first: the order the pump starts them). */
  unfinished(): JobRow[] {
    return this.guard('Cannot list jobs', () => jobRows(this.db.all<JobRow>(`SELECT * FROM jobs WHERE status IN ('queued','running','retry_wait') ORDER BY created_at, ${this.insertion}`)))
  }

  /**
   * Jobs newest first, one page at a time (keyset on created_at, insertion order: stable while jobs are added). The
   * cursor is opaque (base64url); a malformed one is H2K_USAGE.
   */
  jobsPage(filter: {status?: JobStatus; limit: number; cursor?: string}): JobPage {
    if (!Number.isInteger(filter.limit) || filter.limit < 1 || filter.limit > 500) throw new H2KError('H2K_USAGE', `limit must be an integer from 1 to 500 (got ${String(filter.limit)}).`)
    const after = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor)
    return this.guard('Cannot list jobs', () => {
      const where: string[] = []
      const params: SqlValue[] = []
      if (filter.status) {
        where.push('status = ?')
        params.push(filter.status)
      }
      if (after) {
        where.push(`(created_at < ? OR (created_at = ? AND ${this.insertion} < ?))`)
        params.push(after.createdAt, after.createdAt, after.rowid)
      }
      const rows = this.db.all<JobRow & {row_key: number}>(`SELECT ${this.insertion} AS row_key, * FROM jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, ${this.insertion} DESC LIMIT ?`, [...params, filter.limit + 1])
      const page = rows.slice(0, filter.limit)
      const last = page.at(-1)
      const nextCursor = rows.length > filter.limit && last ? encodeCursor({createdAt: last.created_at, rowid: last.row_key}) : null
      return {jobs: jobRows(page.map(({row_key: _k, ...row}) => row as JobRow)), nextCursor}
    })
  }

  /** The ids this job waits for (job_dependencies). */
  dependenciesOf(id: string): string[] {
    if (!this.hasJobService()) return []
    return this.guard('Cannot read job dependencies', () => (this.db.all('SELECT depends_on FROM job_dependencies WHERE job_id = ? ORDER BY depends_on', [id]) as Array<{depends_on: string}>).map((r) => r.depends_on))
  }

  /** The dependencies of every job not finished (queued, running, waiting for a retry), by job id: one statement for a whole pump. */
  dependenciesOfUnfinished(): Map<string, string[]> {
    const byJob = new Map<string, string[]>()
    if (!this.hasJobService()) return byJob
    const rows = this.guard('Cannot read job dependencies', () =>
      this.db.all<{job_id: string; depends_on: string}>("SELECT d.job_id, d.depends_on FROM job_dependencies d JOIN jobs j ON j.id = d.job_id WHERE j.status IN ('queued','running','retry_wait') ORDER BY d.job_id, d.depends_on"),
    )
    for (const {depends_on, job_id} of rows) {
      const list = byJob.get(job_id)
      if (list) list.push(depends_on)
      else byJob.set(job_id, [depends_on])
    }
    return byJob
  }

  /** The ids of the jobs that wait for this one. */
  dependentsOf(id: string): string[] {
    if (!this.hasJobService()) return []
    return this.guard('Cannot read job dependencies', () => (this.db.all('SELECT job_id FROM job_dependencies WHERE depends_on = ? ORDER BY job_id', [id]) as Array<{job_id: string}>).map((r) => r.job_id))
  }

  /** Every run of a job, first first. */
  attemptsOf(id: string): AttemptRow[] {
    if (!this.hasJobService()) return []
    return this.guard('Cannot read job attempts', () => this.db.all('SELECT * FROM job_attempts WHERE job_id = ? ORDER BY attempt', [id]) as AttemptRow[])
  }

  /**
   * A run begins (the runner, right after the job moved to running). Attempts are numbered per job for
   * its whole life: a retried job's attempt count restarts, its attempt rows go on. Returns the number.
   */
  startAttempt(id: string): number {
    return this.guard('Cannot record an attempt', () =>
      this.db.transaction(() => {
        const {next} = this.db.get('SELECT COALESCE(MAX(attempt), 0) + 1 AS next FROM job_attempts WHERE job_id = ?', [id]) as {next: number}
        this.db.run('INSERT INTO job_attempts (job_id, attempt, started_at) VALUES (?, ?, ?)', [id, next, new Date().toISOString()])
        return next
      }),
    )
  }

  /** A run ended: its outcome and, for a failure, the error as stored. */
  endAttempt(id: string, attempt: number, outcome: string, error?: unknown): void {
    this.guard('Cannot record an attempt', () =>
      this.db.run('UPDATE job_attempts SET ended_at = ?, outcome = ?, error_json = ? WHERE job_id = ? AND attempt = ?', [new Date().toISOString(), outcome, error === undefined ? null : JSON.stringify(error), id, attempt]),
    )
  }

  /** Runs left open by a daemon that died (recovery): they end with `outcome`. */
  endOpenAttempts(id: string, outcome: string): void {
    if (!this.hasJobService()) return
    this.guard('Cannot record an attempt', () => this.db.run('UPDATE job_attempts SET ended_at = ?, outcome = ? WHERE job_id = ? AND ended_at IS NULL', [new Date().toISOString(), outcome, id]))
  }

  /** Why a queued job waits (and until when), or null/null once it is due. Written only when it changed. */
  setWait(id: string, notBefore: number | null, reason: string | null): void {
    this.guard('Cannot update a job', () => this.db.run('UPDATE jobs SET not_before = ?, wait_reason = ? WHERE id = ? AND (not_before IS DISTINCT FROM ? OR wait_reason IS DISTINCT FROM ?)', [notBefore, reason, id, notBefore, reason]))
  }

  /** Delete jobs (their history, attempts and dependency edges go with them; processed_files keep the file, without the job). */
  deleteJobs(ids: readonly string[]): number {
    return this.guard('Cannot delete jobs', () => this.db.transaction(() => ids.reduce((n, id) => n + this.db.run('DELETE FROM jobs WHERE id = ?', [id]).changes, 0)))
  }

  /** Migration 2 is in (a store of an older build opened read-only may predate it); remembered once true. */
  private hasJobService(): boolean {
    this.jobService ||= this.schemaVersion >= 2
    return this.jobService
  }

  /** The column that orders jobs by insertion: SQLite's rowid, PostgreSQL's `seq`. */
  private get insertion(): string {
    return this.db.engine === 'sqlite' ? 'rowid' : 'seq'
  }

  recordProcessed(row: Omit<ProcessedFileRow, 'id' | 'processed_at'>): void {
    this.guard('Cannot record a processed file', () =>
      this.db.run('INSERT INTO processed_files (filename, file_size, file_hash, processed_at, job_id, output_path) VALUES (?, ?, ?, ?, ?, ?)', [row.filename, row.file_size, row.file_hash, new Date().toISOString(), row.job_id, row.output_path]),
    )
  }

  /** A successful earlier conversion of the same file: same name and size (and hash when one is given). */
  findProcessed(filename: string, size: number, hash?: string): ProcessedFileRow | undefined {
    return this.guard('Cannot read processed files', () =>
      hash === undefined
        ? (this.db.get('SELECT * FROM processed_files WHERE filename = ? AND file_size = ? ORDER BY id DESC LIMIT 1', [filename, size]) as ProcessedFileRow | undefined)
        : (this.db.get('SELECT * FROM processed_files WHERE file_size = ? AND file_hash = ? ORDER BY id DESC LIMIT 1', [size, hash]) as ProcessedFileRow | undefined),
    )
  }

  processedFiles(): ProcessedFileRow[] {
    return this.guard('Cannot read processed files', () => this.db.all('SELECT * FROM processed_files ORDER BY id DESC') as ProcessedFileRow[])
  }

  /** Forget a file (every size and hash of that name): it will be converted again when dropped. */
  forgetProcessed(filename: string): number {
    return this.guard('Cannot forget a processed file', () => this.db.run('DELETE FROM processed_files WHERE filename = ?', [filename]).changes)
  }

  /**
   * Open read-write a store that must already exist (maintenance commands): a wrong --output-dir gives
   * H2K_DAEMON_NOT_RUNNING instead of creating an empty store there.
   */
  static openExisting(target: StoreTarget | string): JobStore {
    if (typeof target === 'string' || target.postgres === undefined) JobStore.open(target, {readonly: true}).close()
    return JobStore.open(target)
  }

  /** Processed-file records older than `before` (an ISO instant), oldest first: what `purgeProcessed` removes. */
  processedBefore(before: string): ProcessedFileRow[] {
    return this.guard('Cannot read processed files', () => this.db.all('SELECT * FROM processed_files WHERE processed_at < ? ORDER BY processed_at, id', [before]) as ProcessedFileRow[])
  }

  /** Delete processed-file records older than `before` (an ISO instant): those files are converted again when dropped. */
  purgeProcessed(before: string): number {
    return this.guard('Cannot purge processed files', () => this.db.run('DELETE FROM processed_files WHERE processed_at < ?', [before]).changes)
  }

  /** Totals of processed_files; the key type follows from the stored hash (32 hex digits MD5, 64 SHA-256, none name+size). */
  processedStats(): ProcessedStats {
    return this.guard('Cannot read processed files', () => {
      const totals = this.db.get('SELECT COUNT(*) AS rows, COUNT(DISTINCT filename) AS files, COALESCE(SUM(file_size), 0) AS bytes, MIN(processed_at) AS oldest, MAX(processed_at) AS newest FROM processed_files') as Omit<ProcessedStats, 'byKey'>
      const byKey = this.db.all("SELECT CASE WHEN file_hash IS NULL THEN 'name-size' WHEN length(file_hash) = 32 THEN 'md5' WHEN length(file_hash) = 64 THEN 'sha256' ELSE 'other' END AS key, COUNT(*) AS n FROM processed_files GROUP BY key ORDER BY key") as Array<{key: string; n: number}>
      return {...totals, byKey: Object.fromEntries(byKey.map((r) => [r.key, r.n]))}
    })
  }

  /** Fold the WAL into the database and truncate it, then rebuild the file without free pages. Waits up to busy_timeout for a running daemon's transactions. */
  vacuum(): {checkpoint: {busy: number; log: number; checkpointed: number}} {
    const raw = this.sqliteOnly('vacuum', 'run VACUUM (ANALYZE) on the server, or let autovacuum do it')
    return this.guard('Cannot vacuum the job store', () => {
      const [checkpoint] = raw.pragma('wal_checkpoint(TRUNCATE)') as Array<{busy: number; log: number; checkpointed: number}>
      raw.exec('VACUUM')
      raw.pragma('wal_checkpoint(TRUNCATE)')
      return {checkpoint: checkpoint ?? {busy: 0, checkpointed: 0, log: 0}}
    })
  }

  /**
   * A consistent copy of the store into `dest` through SQLite's online backup API (never a file copy: with WAL
   * the committed pages may still be in jobs.db-wal); a daemon may keep writing meanwhile.
   */
  async backup(dest: string): Promise<void> {
    const raw = this.sqliteOnly('backup', 'back it up on the server with pg_dump (or your PostgreSQL backups)')
    try {
      await raw.backup(dest)
    } catch (error) {
      throw mapForeignError(error, {operation: 'Cannot back up the job store', path: this.path})
    }
  }

  /** SQLite's handle for what only SQLite does here (VACUUM, the online backup); on PostgreSQL a clear H2K_USAGE saying what to use instead. */
  private sqliteOnly(what: string, instead: string): import('better-sqlite3').Database {
    if (this.db.engine !== 'sqlite') {
      throw new H2KError('H2K_USAGE', `The job store is on PostgreSQL (${this.path}): hyper2kvm does not ${what} it; ${instead}.`, {details: {location: this.path}})
    }
    return (this.db as SqliteDb).raw
  }

  /** Bytes on disk: the database file, its write-ahead log, and both together (PostgreSQL: the database's size, no WAL of its own). */
  diskUsage(): {db: number; wal: number; total: number} {
    if (this.db.engine !== 'sqlite') {
      const db = this.guard('Cannot read the job store', () => this.db.get<{size: number}>('SELECT pg_database_size(current_database()) AS size')?.size ?? 0)
      return {db, total: db, wal: 0}
    }
    const size = (path: string): number => {
      try {
        return statSync(path).size
      } catch {
        return 0
      }
    }
    const db = size(this.path)
    const wal = size(`${this.path}-wal`)
    return {db, total: db + wal, wal}
  }
}

/** A jobs row as the store classes know it: PostgreSQL's `seq` (insertion order) is the store's own business. */
function jobRow(row: JobRow | undefined): JobRow | undefined {
  if (row !== undefined && 'seq' in row) delete (row as {seq?: unknown}).seq
  return row
}

function jobRows(rows: JobRow[]): JobRow[] {
  for (const row of rows) jobRow(row)
  return rows
}
