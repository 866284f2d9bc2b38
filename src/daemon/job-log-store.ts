import type Database from 'better-sqlite3'

import {mapForeignError} from '../errors/map-foreign-error.js'

/** Lines kept per job: the newest ones (a job retried many times keeps its latest attempts). */
export const JOB_LOG_LINES = 2000
/** Lines returned by one read at most. */
export const JOB_LOG_PAGE = 1000

export interface JobLogLine {
  seq: number
  at: string
  level: string
  event: string
  message: string
  fields: Record<string, unknown>
}

/**
 * Each job's own log lines in the store (`job_log`, migration 4): written by the daemon log's tap,
 * read by GET /api/v1/jobs/{id}/log. Sequence numbers grow per job and are never reused, so a reader
 * follows with `after`; older lines beyond JOB_LOG_LINES are deleted as new ones come.
 */
export class JobLogStore {
  private readonly next = new Map<string, number>()

  constructor(private readonly db: Database.Database) {}

  append(jobId: string, line: Omit<JobLogLine, 'seq'>): void {
    // The store closes last when the daemon stops: a line after that is in the daemon log only.
    if (!this.db.open) return
    try {
      this.db.transaction(() => {
        let seq = this.next.get(jobId)
        if (seq === undefined) seq = ((this.db.prepare('SELECT MAX(seq) AS last FROM job_log WHERE job_id = ?').get(jobId) as {last: number | null}).last ?? 0) + 1
        this.db.prepare('INSERT INTO job_log (job_id, seq, at, level, event, message, fields_json) VALUES (?, ?, ?, ?, ?, ?, ?)').run(jobId, seq, line.at, line.level, line.event, line.message, JSON.stringify(line.fields))
        if (seq > JOB_LOG_LINES && seq % 100 === 0) this.db.prepare('DELETE FROM job_log WHERE job_id = ? AND seq <= ?').run(jobId, seq - JOB_LOG_LINES)
        this.next.set(jobId, seq + 1)
      })()
    } catch (error) {
      this.next.delete(jobId)
      throw mapForeignError(error, {operation: 'Cannot record a job log line'})
    }
  }

  /** Lines after `after` (0: from the oldest kept), oldest first, at most `limit`. */
  lines(jobId: string, after = 0, limit = JOB_LOG_PAGE): JobLogLine[] {
    try {
      const rows = this.db.prepare('SELECT seq, at, level, event, message, fields_json FROM job_log WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(jobId, after, Math.min(Math.max(1, limit), JOB_LOG_PAGE)) as Array<Omit<JobLogLine, 'fields'> & {fields_json: string | null}>
      return rows.map(({fields_json, ...r}) => ({...r, fields: fields_json === null ? {} : (JSON.parse(fields_json) as Record<string, unknown>)}))
    } catch (error) {
      throw mapForeignError(error, {operation: 'Cannot read job log lines'})
    }
  }
}

/** The daemon log's tap that copies each line naming a job (`job` field) into that job's log. */
export function jobLogTap(store: JobLogStore): (line: {at: string; level: string; event: string; fields: Record<string, unknown>; message: string}) => void {
  return (line) => {
    const {job, ...fields} = line.fields
    if (typeof job === 'string') store.append(job, {at: line.at, event: line.event, fields, level: line.level, message: line.message})
  }
}
