import type {Migration} from './migration.js'

/** The schema as it was before migrations existed (the shape stores written by earlier builds have). */
export const BASELINE_SCHEMA = `
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
 * The same schema on PostgreSQL (always a new store there): `seq BIGSERIAL` stands in for SQLite's rowid
 * (insertion order: the tie-break of the job list's keyset paging), BIGINT for sizes and ms epochs, the
 * CHECK constraint of `status` named so migration 2 can replace it in place.
 */
const BASELINE_POSTGRES = `
CREATE TABLE jobs (
  seq BIGSERIAL NOT NULL UNIQUE,
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  vm_path TEXT NOT NULL,
  source_path TEXT NOT NULL,
  output_path TEXT NOT NULL,
  status TEXT NOT NULL CONSTRAINT jobs_status_check CHECK (status IN ('queued','running','retry_wait','succeeded','failed','duplicate')),
  created_at TEXT NOT NULL,
  started_at TEXT,
  completed_at TEXT,
  progress_json TEXT,
  result_json TEXT,
  error TEXT,
  definition_json TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT,
  intake_id TEXT
);
CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_intake ON jobs(intake_id);
CREATE TABLE job_history (
  id BIGSERIAL PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  at TEXT NOT NULL,
  from_status TEXT,
  to_status TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX job_history_job ON job_history(job_id);
CREATE TABLE processed_files (
  id BIGSERIAL PRIMARY KEY,
  filename TEXT NOT NULL,
  file_size BIGINT NOT NULL,
  file_hash TEXT,
  processed_at TEXT NOT NULL,
  job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
  output_path TEXT
);
CREATE INDEX processed_files_key ON processed_files(filename, file_size);
`

/**
 * 1 baseline: a new store gets the pre-migration schema; a store written before migrations existed
 * (SQLite only) is adopted as it is (every statement is IF NOT EXISTS), after the one fix-up those builds
 * did at open: a store older than `intake_id` gets the column, each old job having been its own claim.
 */
export const baseline: Migration = {
  name: 'baseline',
  up(db) {
    if (db.engine === 'postgres') {
      db.exec(BASELINE_POSTGRES)
      return
    }
    const columns = db.all<{name: string}>("SELECT name FROM pragma_table_info('jobs')").map((c) => c.name)
    if (columns.length > 0 && !columns.includes('intake_id')) db.exec('ALTER TABLE jobs ADD COLUMN intake_id TEXT; UPDATE jobs SET intake_id = id')
    db.exec(BASELINE_SCHEMA)
  },
  version: 1,
}
