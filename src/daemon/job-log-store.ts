import {mapForeignError} from '../errors/map-foreign-error.js'
import type {SqlDb} from '../store/sql-db.js'

/** Lines kept per job: the newest ones (a job retried many times keeps its latest attempts). */
export const JOB_LOG_LINES = 2000
/** How long lines are dropped after the store server could not be reached (each try may wait statement_timeout). */
export const UNAVAILABLE_PAUSE_MS = 10_000
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
 * follows with `after`; older lines beyond JOB_LOG_LINES are deleted as new ones come. The number is
 * taken in the INSERT itself (the job's highest + 1): several daemons sharing a store may log one job
 * (its lease moved), and a number both took is taken again.
 */
export class JobLogStore {
  /** Until when lines are not even tried (ms epoch): a store server that could not be reached is not waited for again at every log line. */
  private unavailableUntil = 0

  constructor(
    private readonly db: SqlDb,
    private readonly now: () => number = Date.now,
  ) {}

  append(jobId: string, line: Omit<JobLogLine, 'seq'>): void {
    // The store closes last when the daemon stops: a line after that is in the daemon log only.
    if (!this.db.open) return
    // The server was unreachable a moment ago: the line is in the daemon log (the tap said once that the job's log misses lines).
    if (this.now() < this.unavailableUntil) return
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        // A line about a job the store does not hold (just purged, or refused before it was recorded) has no log to go to.
        const added = this.db.get<{seq: number}>(
          'INSERT INTO job_log (job_id, seq, at, level, event, message, fields_json) SELECT ?, COALESCE((SELECT MAX(seq) FROM job_log WHERE job_id = ?), 0) + 1, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?) ON CONFLICT DO NOTHING RETURNING seq',
          [jobId, jobId, line.at, line.level, line.event, line.message, JSON.stringify(line.fields), jobId],
        )
        if (added !== undefined) {
          if (added.seq > JOB_LOG_LINES && added.seq % 100 === 0) this.db.run('DELETE FROM job_log WHERE job_id = ? AND seq <= ?', [jobId, added.seq - JOB_LOG_LINES])
          return
        }
        if (this.db.get('SELECT 1 FROM jobs WHERE id = ?', [jobId]) === undefined) return
      }
    } catch (error) {
      const mapped = mapForeignError(error, {operation: 'Cannot record a job log line'})
      if (mapped.code === 'H2K_STORE_UNAVAILABLE') this.unavailableUntil = this.now() + UNAVAILABLE_PAUSE_MS
      throw mapped
    }
  }

  /** Lines after `after` (0: from the oldest kept), oldest first, at most `limit`. */
  lines(jobId: string, after = 0, limit = JOB_LOG_PAGE): JobLogLine[] {
    try {
      const rows = this.db.all<Omit<JobLogLine, 'fields'> & {fields_json: string | null}>('SELECT seq, at, level, event, message, fields_json FROM job_log WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?', [jobId, after, Math.min(Math.max(1, limit), JOB_LOG_PAGE)])
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
