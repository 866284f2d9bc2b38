import {existsSync, mkdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

import Database from 'better-sqlite3'

import {H2KError} from '../errors/h2k-error.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {stateDir} from './state-paths.js'

export type JobStatus = 'queued' | 'running' | 'retry_wait' | 'succeeded' | 'failed' | 'duplicate'

export interface JobRow {
  id: string
  name: string
  vm_path: string
  /** The file as it arrived (the name the error file and dedup use). */
  source_path: string
  output_path: string
  status: JobStatus
  created_at: string
  started_at: string | null
  completed_at: string | null
  progress_json: string | null
  result_json: string | null
  error: string | null
  definition_json: string
  attempts: number
  next_attempt_at: number | null
  /** The claim this job came from (`<processing>/<intake_id>/`): a batch job config claims once for many jobs. */
  intake_id: string | null
}

export interface HistoryRow {
  id: number
  job_id: string
  at: string
  from_status: string | null
  to_status: string
  detail: string | null
}

export interface ProcessedFileRow {
  id: number
  filename: string
  file_size: number
  file_hash: string | null
  processed_at: string
  job_id: string | null
  output_path: string | null
}

/** What `dedup stats` reports about processed_files. */
export interface ProcessedStats {
  rows: number
  /** Distinct file names. */
  files: number
  /** Sum of the recorded file sizes. */
  bytes: number
  oldest: string | null
  newest: string | null
  /** Rows per key type: md5, sha256, name-size (no hash). */
  byKey: Record<string, number>
}

export {stateDir}
export const storePath = (outputDir: string): string => join(stateDir(outputDir), 'jobs.db')

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  vm_path TEXT NOT NULL,
  source_path TEXT NOT NULL,
  output_path TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued','running','retry_wait','succeeded','failed','duplicate')),
  created_at TEXT NOT NULL,
  started_at TEXT,
  completed_at TEXT,
  progress_json TEXT,
  result_json TEXT,
  error TEXT,
  definition_json TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  intake_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_intake ON jobs(intake_id);
CREATE TABLE IF NOT EXISTS job_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  at TEXT NOT NULL,
  from_status TEXT,
  to_status TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX IF NOT EXISTS job_history_job ON job_history(job_id);
CREATE TABLE IF NOT EXISTS processed_files (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  filename TEXT NOT NULL,
  file_size INTEGER NOT NULL,
  file_hash TEXT,
  processed_at TEXT NOT NULL,
  job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
  output_path TEXT
);
CREATE INDEX IF NOT EXISTS processed_files_key ON processed_files(filename, file_size);
`

/**
 * The durable job store (better-sqlite3, WAL, foreign keys on): `jobs`, `job_history` (one row per status
 * transition) and `processed_files` (deduplication). Every write is one transaction.
 */
export class JobStore {
  readonly path: string
  private readonly db: Database.Database

  private constructor(path: string, db: Database.Database) {
    this.path = path
    this.db = db
  }

  static open(outputDir: string, options: {readonly?: boolean} = {}): JobStore {
    const path = storePath(outputDir)
    try {
      if (!options.readonly) mkdirSync(stateDir(outputDir), {mode: 0o700, recursive: true})
      const db = new Database(path, {fileMustExist: options.readonly === true, readonly: options.readonly === true})
      db.pragma('busy_timeout = 5000')
      if (!options.readonly) {
        db.pragma('journal_mode = WAL')
        db.pragma('synchronous = NORMAL')
        const columns = (db.prepare("SELECT name FROM pragma_table_info('jobs')").all() as Array<{name: string}>).map((c) => c.name)
        // A store written before intake_id existed: add the column (every old job was its own claim).
        if (columns.length > 0 && !columns.includes('intake_id')) db.exec('ALTER TABLE jobs ADD COLUMN intake_id TEXT; UPDATE jobs SET intake_id = id')
        db.exec(SCHEMA)
      }
      db.pragma('foreign_keys = ON')
      return new JobStore(path, db)
    } catch (error) {
      // Read-only, a missing store is no daemon: SQLite's CANTOPEN, or better-sqlite3's own check that .daemon/ exists.
      if (options.readonly && ((error as {code?: string}).code === 'SQLITE_CANTOPEN' || !existsSync(path))) {
        throw new H2KError('H2K_DAEMON_NOT_RUNNING', `No job store at ${path}: no daemon ever ran with this output directory.`, {
          details: {path},
          suggestions: ['Pass the daemon\'s --output-dir (or the --config it was started with).'],
        })
      }
      throw mapForeignError(error, {operation: 'Cannot open the job store', path})
    }
  }

  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn()
    } catch (error) {
      throw mapForeignError(error, {operation: what, path: this.path})
    }
  }

  /** A write that changes nothing, in a transaction: throws when the store cannot take writes (readiness). */
  ping(): void {
    this.guard('The job store does not take writes', () => this.db.transaction(() => this.db.prepare('UPDATE jobs SET id = id WHERE 0').run())())
  }

  get journalMode(): string {
    return String(this.db.pragma('journal_mode', {simple: true}))
  }

  get foreignKeys(): boolean {
    return Number(this.db.pragma('foreign_keys', {simple: true})) === 1
  }

  close(): void {
    this.db.close()
  }

  insertJob(job: Pick<JobRow, 'id' | 'name' | 'vm_path' | 'source_path' | 'output_path' | 'definition_json'> & {intake_id?: string; status?: JobStatus; detail?: string}): JobRow {
    return this.guard('Cannot add a job', () =>
      this.db.transaction(() => {
        const status = job.status ?? 'queued'
        this.db
          .prepare('INSERT INTO jobs (id, name, vm_path, source_path, output_path, status, created_at, definition_json, intake_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(job.id, job.name, job.vm_path, job.source_path, job.output_path, status, new Date().toISOString(), job.definition_json, job.intake_id ?? job.id)
        this.history(job.id, null, status, job.detail ?? `claimed ${job.source_path}`)
        return this.job(job.id)!
      })(),
    )
  }

  private history(jobId: string, from: string | null, to: string, detail?: string): void {
    this.db.prepare('INSERT INTO job_history (job_id, at, from_status, to_status, detail) VALUES (?, ?, ?, ?, ?)').run(jobId, new Date().toISOString(), from, to, detail ?? null)
  }

  /** Move a job to `to`, with a history row; `fields` are other columns to set at the same time. */
  transition(id: string, to: JobStatus, detail?: string, fields: Partial<Omit<JobRow, 'id' | 'status'>> = {}): JobRow {
    return this.guard('Cannot update a job', () =>
      this.db.transaction(() => {
        const current = this.job(id)
        if (!current) throw new H2KError('H2K_INTERNAL', `No job ${id} in the store.`)
        const sets = ['status = ?', ...Object.keys(fields).map((k) => `${k} = ?`)]
        this.db.prepare(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ?`).run(to, ...Object.values(fields), id)
        this.history(id, current.status, to, detail)
        return this.job(id)!
      })(),
    )
  }

  setProgress(id: string, progress: unknown): void {
    this.guard('Cannot record progress', () => this.db.prepare('UPDATE jobs SET progress_json = ? WHERE id = ?').run(JSON.stringify(progress), id))
  }

  job(id: string): JobRow | undefined {
    return this.guard('Cannot read a job', () => this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined)
  }

  /** Jobs, newest first; a prefix of an id is enough for `job()` lookups through `findJob`. */
  jobs(filter: {status?: string; limit?: number} = {}): JobRow[] {
    return this.guard('Cannot list jobs', () => {
      const where = filter.status ? 'WHERE status = ?' : ''
      const params: unknown[] = filter.status ? [filter.status] : []
      return this.db.prepare(`SELECT * FROM jobs ${where} ORDER BY created_at DESC, rowid DESC LIMIT ?`).all(...params, filter.limit ?? -1) as JobRow[]
    })
  }

  findJob(idOrPrefix: string): JobRow | undefined {
    return this.guard('Cannot read a job', () => {
      const rows = this.db.prepare('SELECT * FROM jobs WHERE id = ? OR id LIKE ? LIMIT 2').all(idOrPrefix, `${idOrPrefix.replace(/[%_]/g, '')}%`) as JobRow[]
      return rows.find((r) => r.id === idOrPrefix) ?? (rows.length === 1 ? rows[0] : undefined)
    })
  }

  historyOf(id: string): HistoryRow[] {
    return this.guard('Cannot read job history', () => this.db.prepare('SELECT * FROM job_history WHERE job_id = ? ORDER BY id').all(id) as HistoryRow[])
  }

  /** Every job of one claim. */
  jobsOfIntake(intakeId: string): JobRow[] {
    return this.guard('Cannot list jobs', () => this.db.prepare('SELECT * FROM jobs WHERE intake_id = ? ORDER BY created_at, rowid').all(intakeId) as JobRow[])
  }

  /** Jobs not finished: queued, running (after a crash) and waiting for a retry. */
  unfinished(): JobRow[] {
    return this.guard('Cannot list jobs', () => this.db.prepare("SELECT * FROM jobs WHERE status IN ('queued','running','retry_wait') ORDER BY created_at, rowid").all() as JobRow[])
  }

  recordProcessed(row: Omit<ProcessedFileRow, 'id' | 'processed_at'>): void {
    this.guard('Cannot record a processed file', () =>
      this.db.prepare('INSERT INTO processed_files (filename, file_size, file_hash, processed_at, job_id, output_path) VALUES (?, ?, ?, ?, ?, ?)').run(row.filename, row.file_size, row.file_hash, new Date().toISOString(), row.job_id, row.output_path),
    )
  }

  /** A successful earlier conversion of the same file: same name and size (and hash when one is given). */
  findProcessed(filename: string, size: number, hash?: string): ProcessedFileRow | undefined {
    return this.guard('Cannot read processed files', () =>
      hash === undefined
        ? (this.db.prepare('SELECT * FROM processed_files WHERE filename = ? AND file_size = ? ORDER BY id DESC LIMIT 1').get(filename, size) as ProcessedFileRow | undefined)
        : (this.db.prepare('SELECT * FROM processed_files WHERE file_size = ? AND file_hash = ? ORDER BY id DESC LIMIT 1').get(size, hash) as ProcessedFileRow | undefined),
    )
  }

  processedFiles(): ProcessedFileRow[] {
    return this.guard('Cannot read processed files', () => this.db.prepare('SELECT * FROM processed_files ORDER BY id DESC').all() as ProcessedFileRow[])
  }

  /** Forget a file (every size and hash of that name): it will be converted again when dropped. */
  forgetProcessed(filename: string): number {
    return this.guard('Cannot forget a processed file', () => this.db.prepare('DELETE FROM processed_files WHERE filename = ?').run(filename).changes)
  }

  /**
   * Open read-write a store that must already exist (maintenance commands): a wrong --output-dir gives
   * H2K_DAEMON_NOT_RUNNING instead of creating an empty store there.
   */
  static openExisting(outputDir: string): JobStore {
    JobStore.open(outputDir, {readonly: true}).close()
    return JobStore.open(outputDir)
  }

  /** Processed-file records older than `before` (an ISO instant), oldest first: what `purgeProcessed` removes. */
  processedBefore(before: string): ProcessedFileRow[] {
    return this.guard('Cannot read processed files', () => this.db.prepare('SELECT * FROM processed_files WHERE processed_at < ? ORDER BY processed_at, id').all(before) as ProcessedFileRow[])
  }

  /** Delete processed-file records older than `before` (an ISO instant): those files are converted again when dropped. */
  purgeProcessed(before: string): number {
    return this.guard('Cannot purge processed files', () => this.db.prepare('DELETE FROM processed_files WHERE processed_at < ?').run(before).changes)
  }

  /** Totals of processed_files; the key type follows from the stored hash (32 hex digits MD5, 64 SHA-256, none name+size). */
  processedStats(): ProcessedStats {
    return this.guard('Cannot read processed files', () => {
      const totals = this.db
        .prepare('SELECT COUNT(*) AS rows, COUNT(DISTINCT filename) AS files, COALESCE(SUM(file_size), 0) AS bytes, MIN(processed_at) AS oldest, MAX(processed_at) AS newest FROM processed_files')
        .get() as Omit<ProcessedStats, 'byKey'>
      const byKey = this.db
        .prepare("SELECT CASE WHEN file_hash IS NULL THEN 'name-size' WHEN length(file_hash) = 32 THEN 'md5' WHEN length(file_hash) = 64 THEN 'sha256' ELSE 'other' END AS key, COUNT(*) AS n FROM processed_files GROUP BY key ORDER BY key")
        .all() as Array<{key: string; n: number}>
      return {...totals, byKey: Object.fromEntries(byKey.map((r) => [r.key, r.n]))}
    })
  }

  /** Fold the WAL into the database and truncate it, then rebuild the file without free pages. Waits up to busy_timeout for a running daemon's transactions. */
  vacuum(): {checkpoint: {busy: number; log: number; checkpointed: number}} {
    return this.guard('Cannot vacuum the job store', () => {
      const [checkpoint] = this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{busy: number; log: number; checkpointed: number}>
      this.db.exec('VACUUM')
      this.db.pragma('wal_checkpoint(TRUNCATE)')
      return {checkpoint: checkpoint ?? {busy: 0, checkpointed: 0, log: 0}}
    })
  }

  /**
   * A consistent copy of the store into `dest` through SQLite's online backup API (never a file copy: with WAL
   * the committed pages may still be in jobs.db-wal); a daemon may keep writing meanwhile.
   */
  async backup(dest: string): Promise<void> {
    try {
      await this.db.backup(dest)
    } catch (error) {
      throw mapForeignError(error, {operation: 'Cannot back up the job store', path: this.path})
    }
  }

  /** Bytes on disk: the database file, its write-ahead log, and both together. */
  diskUsage(): {db: number; wal: number; total: number} {
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
