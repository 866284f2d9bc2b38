import {join} from 'node:path'

import Database from 'better-sqlite3'

import type {AttemptRow} from '../../src/daemon/job-row.js'

/** Read a daemon's job store (output_dir/.daemon/jobs.db) read-only, as a test looks at it from outside. */
function readStore<T>(out: string, read: (db: Database.Database) => T): T {
  const db = new Database(join(out, '.daemon', 'jobs.db'), {readonly: true})
  try {
    return read(db)
  } finally {
    db.close()
  }
}

/** A job's history as "<to status>: <detail>" lines, oldest first. */
export function historyDetails(out: string, id: string): string[] {
  return readStore(out, (db) => (db.prepare('SELECT to_status, detail FROM job_history WHERE job_id = ? ORDER BY id').all(id) as Array<{to_status: string; detail: string | null}>).map((r) => `${r.to_status}: ${r.detail ?? ''}`))
}

/** Every recorded attempt of every job (job_attempts), by job then attempt. */
export function attemptRows(out: string): AttemptRow[] {
  return readStore(out, (db) => db.prepare('SELECT * FROM job_attempts ORDER BY job_id, attempt').all() as AttemptRow[])
}
