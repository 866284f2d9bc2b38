import {withMappedErrors} from '../errors/map-foreign-error.js'
import type {SqlDb, SqlValue} from '../store/sql-db.js'
import type {RunOutcome, Schedule, ScheduleRun, ScheduleSpec} from './schedule.js'

interface ScheduleDbRow {
  id: string
  name: string
  description: string | null
  cron: string
  timezone: string
  enabled: number
  template_json: string
  window_json: string | null
  window_end: string | null
  overlap: string
  catch_up: string
  retry_json: string | null
  source: string
  next_run: number | null
  last_run: number | null
  run_count: number
  created_at: string
  updated_at: string
  tags: string
}

interface RunDbRow {
  id: number
  schedule_id: string
  scheduled_for: number
  fired_at: number
  outcome: string
  job_ids_json: string
  override_window: number
  detail: string | null
}

/** Runs kept per schedule (the newest); older ones are pruned as new ones are recorded. */
const RUNS_KEPT = 500

/** Ids per IN list. */
const IN_CHUNK = 500

/** Job statuses that are not finished (queued, running, waiting for a retry). */
const UNFINISHED = "('queued','running','retry_wait')"

/**
 * The schedules and their runs (migration 3), on the job store's database: one small class owns every
 * statement about them (the store stays simple SQL, ready for a second engine).
 */
export class ScheduleStore {
  constructor(private readonly db: SqlDb) {}

  private guard<T>(what: string, fn: () => T): T {
    return withMappedErrors({operation: what}, fn)
  }

  all(): Schedule[] {
    return this.guard('Cannot list schedules', () => this.db.all<ScheduleDbRow>('SELECT * FROM schedules ORDER BY id').map(fromRow))
  }

  get(id: string): Schedule | undefined {
    return this.guard('Cannot read a schedule', () => {
      const row = this.db.get<ScheduleDbRow>('SELECT * FROM schedules WHERE id = ?', [id])
      return row ? fromRow(row) : undefined
    })
  }

  /** Insert or replace the definition of a schedule, keeping its counters; `nextRun` is the caller's (it knows the clock). */
  put(spec: ScheduleSpec, nextRun: number | null, now: number): Schedule {
    return this.guard('Cannot save a schedule', () =>
      this.db.transaction(() => {
        const at = new Date(now).toISOString()
        const values = {
          catch_up: spec.catchUp,
          cron: spec.cron,
          description: spec.description ?? null,
          enabled: spec.enabled ? 1 : 0,
          id: spec.id,
          name: spec.name,
          next_run: nextRun,
          overlap: spec.overlap,
          retry_json: spec.retry === undefined ? null : JSON.stringify(spec.retry),
          source: spec.source,
          tags: JSON.stringify(spec.tags),
          template_json: JSON.stringify(spec.template),
          timezone: spec.timezone,
          window_end: spec.windowEnd ?? null,
          window_json: spec.window === undefined ? null : JSON.stringify(spec.window),
        }
        const columns = Object.keys(values)
        const bound: SqlValue[] = Object.values(values)
        if (this.get(spec.id)) {
          this.db.run(`UPDATE schedules SET ${columns.map((c) => `${c} = ?`).join(', ')}, updated_at = ? WHERE id = ?`, [...bound, at, spec.id])
        } else {
          this.db.run(`INSERT INTO schedules (${columns.join(', ')}, created_at, updated_at) VALUES (${columns.map(() => '?').join(', ')}, ?, ?)`, [...bound, at, at])
        }
        return this.get(spec.id)!
      }),
    )
  }

  setNextRun(id: string, nextRun: number | null): void {
    this.guard('Cannot update a schedule', () => this.db.run('UPDATE schedules SET next_run = ? WHERE id = ?', [nextRun, id]))
  }

  delete(id: string): boolean {
    return this.guard('Cannot delete a schedule', () => this.db.run('DELETE FROM schedules WHERE id = ?', [id]).changes > 0)
  }

  /** Record one due time's outcome; a run that submitted jobs counts (last_run, run_count). */
  recordRun(run: {scheduleId: string; scheduledFor: number; firedAt: number; outcome: RunOutcome; jobIds?: string[]; overrideWindow?: boolean; detail?: string}): ScheduleRun {
    return this.guard('Cannot record a schedule run', () =>
      this.db.transaction(() => {
        const row = this.db.get<RunDbRow>(
          'INSERT INTO schedule_runs (schedule_id, scheduled_for, fired_at, outcome, job_ids_json, override_window, detail) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *',
          [run.scheduleId, run.scheduledFor, run.firedAt, run.outcome, JSON.stringify(run.jobIds ?? []), run.overrideWindow ? 1 : 0, run.detail ?? null],
        )!
        if (run.outcome === 'fired' || run.outcome === 'queued') {
          this.db.run('UPDATE schedules SET last_run = ?, run_count = run_count + 1 WHERE id = ?', [run.firedAt, run.scheduleId])
        }
        this.db.run('DELETE FROM schedule_runs WHERE schedule_id = ? AND id <= (SELECT id FROM schedule_runs WHERE schedule_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)', [run.scheduleId, run.scheduleId, RUNS_KEPT])
        return runOf(row)
      }),
    )
  }

  /** The newest runs of a schedule, newest first. */
  runs(id: string, limit = 20): ScheduleRun[] {
    return this.guard('Cannot read schedule runs', () => this.db.all<RunDbRow>('SELECT * FROM schedule_runs WHERE schedule_id = ? ORDER BY id DESC LIMIT ?', [id, limit]).map(runOf))
  }

  /** Jobs this schedule submitted that have not finished yet (overlap). */
  unfinishedJobs(id: string): string[] {
    return this.guard('Cannot read the jobs of a schedule', () => {
      const ids = new Set<string>()
      for (const run of this.db.all<{job_ids_json: string}>("SELECT job_ids_json FROM schedule_runs WHERE schedule_id = ? AND outcome IN ('fired','queued') ORDER BY id DESC LIMIT 50", [id])) {
        for (const jobId of JSON.parse(run.job_ids_json) as string[]) ids.add(jobId)
      }
      if (ids.size === 0) return []
      // IN lists of at most IN_CHUNK ids (no json_each: PostgreSQL has none; both engines bound the parameters of one statement).
      const all = [...ids]
      const unfinished: string[] = []
      for (let i = 0; i < all.length; i += IN_CHUNK) {
        const chunk = all.slice(i, i + IN_CHUNK)
        unfinished.push(...this.db.all<{id: string}>(`SELECT id FROM jobs WHERE status IN ${UNFINISHED} AND id IN (${chunk.map(() => '?').join(', ')})`, chunk).map((r) => r.id))
      }
      return unfinished
    })
  }
}

function fromRow(row: ScheduleDbRow): Schedule {
  return {
    catchUp: row.catch_up as Schedule['catchUp'],
    createdAt: row.created_at,
    cron: row.cron,
    enabled: row.enabled === 1,
    id: row.id,
    lastRun: row.last_run,
    name: row.name,
    nextRun: row.next_run,
    overlap: row.overlap as Schedule['overlap'],
    runCount: row.run_count,
    source: row.source as Schedule['source'],
    tags: JSON.parse(row.tags) as string[],
    template: JSON.parse(row.template_json) as Schedule['template'],
    timezone: row.timezone,
    updatedAt: row.updated_at,
    ...(row.description === null ? {} : {description: row.description}),
    ...(row.retry_json === null ? {} : {retry: JSON.parse(row.retry_json) as Schedule['retry']}),
    ...(row.window_json === null ? {} : {window: JSON.parse(row.window_json) as Schedule['window']}),
    ...(row.window_end === null ? {} : {windowEnd: row.window_end as Schedule['windowEnd']}),
  }
}

function runOf(row: RunDbRow): ScheduleRun {
  return {
    detail: row.detail,
    firedAt: row.fired_at,
    id: row.id,
    jobIds: JSON.parse(row.job_ids_json) as string[],
    outcome: row.outcome as RunOutcome,
    overrideWindow: row.override_window === 1,
    scheduleId: row.schedule_id,
    scheduledFor: row.scheduled_for,
  }
}
