import type {SqlDb} from '../../store/sql-db.js'

/**
 * Migration 4: `job_log`, each job's own log lines (the daemon log's lines that carry its `job` field),
 * numbered per job (`seq`) so GET /api/v1/jobs/{id}/log?after=N can follow; bounded per job by
 * JobLogStore. Deleted with the job.
 */
export const jobLogMigration = {
  name: 'job log',
  up(db: SqlDb): void {
    db.exec(`
CREATE TABLE job_log (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  at TEXT NOT NULL,
  level TEXT NOT NULL,
  event TEXT NOT NULL,
  message TEXT NOT NULL,
  fields_json TEXT,
  PRIMARY KEY (job_id, seq)
);
`)
  },
  version: 4,
}
