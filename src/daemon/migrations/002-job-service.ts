import type {Migration} from './migration.js'

/** The job statuses from migration 2 on (the CHECK constraint of `jobs.status`). */
export const JOB_STATUSES_V2 = ['queued', 'running', 'retry_wait', 'succeeded', 'failed', 'duplicate', 'cancelled', 'dead', 'skipped'] as const

/** The DAG and the attempts: the same DDL on both engines. */
const JOB_SERVICE_TABLES = `CREATE TABLE job_dependencies (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  depends_on TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  PRIMARY KEY (job_id, depends_on)
);
CREATE INDEX job_dependencies_parent ON job_dependencies(depends_on);
CREATE TABLE job_attempts (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  ended_at TEXT,
  outcome TEXT,
  error_json TEXT,
  PRIMARY KEY (job_id, attempt)
);`

/**
 * 2 job service: the statuses cancelled, dead (retries exhausted: the dead-letter queue) and skipped (a
 * dependency did not succeed) — SQLite cannot alter a CHECK constraint, so `jobs` is rebuilt (new table,
 * copy, drop, rename: the references of job_history and processed_files then name the new table) —; the
 * columns not_before (ms epoch) and wait_reason (why a queued job is not started yet), origin (drop, api,
 * schedule), schedule_id and request_id; the tables job_dependencies (the DAG) and job_attempts (one row
 * per run, with its outcome and error).
 */
export const jobService: Migration = {
  name: 'job service',
  up(db) {
    const statuses = JOB_STATUSES_V2.map((s) => `'${s}'`).join(',')
    db.exec(db.engine === 'postgres' ? jobServicePostgres(statuses) : `
CREATE TABLE jobs_v2 (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  vm_path TEXT NOT NULL,
  source_path TEXT NOT NULL,
  output_path TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN (${statuses})),
  created_at TEXT NOT NULL,
  started_at TEXT,
  completed_at TEXT,
  progress_json TEXT,
  result_json TEXT,
  error TEXT,
  definition_json TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  intake_id TEXT,
  not_before INTEGER,
  wait_reason TEXT,
  origin TEXT NOT NULL DEFAULT 'drop' CHECK (origin IN ('drop','api','schedule')),
  schedule_id TEXT,
  request_id TEXT
);
INSERT INTO jobs_v2 (rowid, id, name, vm_path, source_path, output_path, status, created_at, started_at, completed_at, progress_json, result_json, error, definition_json, attempts, next_attempt_at, intake_id)
  SELECT rowid, id, name, vm_path, source_path, output_path, status, created_at, started_at, completed_at, progress_json, result_json, error, definition_json, attempts, next_attempt_at, intake_id FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;
CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_intake ON jobs(intake_id);
CREATE INDEX jobs_created ON jobs(created_at, id);
${JOB_SERVICE_TABLES}
`)
  },
  version: 2,
}

/** PostgreSQL alters the CHECK constraint and adds the columns in place (no table rebuild: `seq` and the references stay). */
function jobServicePostgres(statuses: string): string {
  return `
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check CHECK (status IN (${statuses}));
ALTER TABLE jobs
  ADD COLUMN not_before BIGINT,
  ADD COLUMN wait_reason TEXT,
  ADD COLUMN origin TEXT NOT NULL DEFAULT 'drop' CONSTRAINT jobs_origin_check CHECK (origin IN ('drop','api','schedule')),
  ADD COLUMN schedule_id TEXT,
  ADD COLUMN request_id TEXT;
CREATE INDEX jobs_created ON jobs(created_at, id);
CREATE INDEX jobs_created_seq ON jobs(created_at, seq);
${JOB_SERVICE_TABLES}
`
}
