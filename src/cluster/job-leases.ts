import {H2KError} from '@hyper2kvm/plugin-api'
import {withMappedErrors} from '../errors/map-foreign-error.js'
import type {JobRow, JobStatus, JobStore} from '../daemon/store.js'
import type {SqlValue} from '../store/sql-db.js'
import {storeNowSql} from './store-clock.js'

/** A running job whose lease ran out: what the conditional take-over compares against. */
export interface ExpiredLease {
  id: string
  leased_by: string | null
  lease_until: number | null
  output_path: string
  source_path: string
}

/** The error of a write that found this node no longer holds the job's lease. */
export function leaseLost(id: string, what: string): H2KError {
  return new H2KError('H2K_LEASE_LOST', `Job ${id}: ${what}: this node no longer holds its lease (it expired or another node took the job over); the attempt's work is abandoned.`, {details: {job: id}})
}

export const isLeaseLost = (error: unknown): boolean => error instanceof H2KError && error.code === 'H2K_LEASE_LOST'

/**
 * Job leases of one node on the shared store (jobs.leased_by, jobs.lease_until; times from the store's clock,
 * store-clock.ts). A job becomes `running` only through `claim` — one conditional UPDATE, the winner being
 * the one whose UPDATE changed the row — and every later write of that run goes through `transition` or
 * `setProgress`, which check the lease in the same transaction (H2K_LEASE_LOST when it is gone). A lease that
 * expired is re-queued by whichever node notices, exactly once: `takeOver` is one UPDATE conditional on the
 * old lease values.
 */
export class JobLeases {
  constructor(
    private readonly store: JobStore,
    readonly nodeId: string,
    /** lease_ttl in ms. */
    private readonly ttlMs: () => number,
  ) {}

  private get db() {
    return this.store.sql
  }

  private guard<T>(what: string, fn: () => T): T {
    return withMappedErrors({operation: what, path: this.store.path}, fn)
  }

  private history(id: string, from: string | null, to: string, detail: string): void {
    this.db.run('INSERT INTO job_history (job_id, at, from_status, to_status, detail) VALUES (?, ?, ?, ?, ?)', [id, new Date().toISOString(), from, to, detail])
  }

  /**
   * Claim a queued (or due retry_wait) job for this node: status running, a fresh lease, attempts + 1, with a
   * history row, in one transaction. Undefined when another node won it (or it is no longer waiting).
   */
  claim(id: string, detail: (attempt: number) => string): JobRow | undefined {
    return this.guard('Cannot claim a job', () =>
      this.db.transaction(() => {
        // The write comes first (no read before it: SQLite's WAL would refuse a write after a stale read).
        const claimFrom = (from: string): boolean => {
          const now = storeNowSql(this.db)
          const params: SqlValue[] = [this.nodeId, ...now.params, this.ttlMs(), new Date().toISOString(), id, from]
          return this.db.run(`UPDATE jobs SET status = 'running', leased_by = ?, lease_until = ${now.sql} + ?, attempts = attempts + 1, next_attempt_at = NULL, started_at = ? WHERE id = ? AND status = ?`, params).changes === 1
        }
        const from = claimFrom('queued') ? 'queued' : claimFrom('retry_wait') ? 'retry_wait' : undefined
        if (from === undefined) return undefined
        const row = this.store.job(id)!
        this.history(id, from, 'running', detail(row.attempts))
        return row
      }),
    )
  }

  /** Inside a transaction: the lease is still this node's (and locks the row until commit), else H2K_LEASE_LOST. */
  assertHeld(id: string, what: string): void {
    const now = storeNowSql(this.db)
    const {changes} = this.db.run(`UPDATE jobs SET lease_until = lease_until WHERE id = ? AND status = 'running' AND leased_by = ? AND lease_until > ${now.sql}`, [id, this.nodeId, ...now.params])
    if (changes !== 1) throw leaseLost(id, what)
  }

  /**
   * An outcome of a running job this node holds: moved to `to` with its history row, and `also` (attempt
   * rows, dedup records) in the same transaction, only while the lease holds. Leaving running drops the lease.
   */
  transition(id: string, to: JobStatus, detail: string, fields: Partial<Omit<JobRow, 'id' | 'status'>> = {}, also: () => void = () => undefined): JobRow {
    return this.store.transaction(() => {
      this.assertHeld(id, `cannot record ${to}`)
      const row = this.store.transition(id, to, detail, to === 'running' ? fields : {...fields, lease_until: null, leased_by: null})
      also()
      return row
    })
  }

  /** Progress of a running job this node holds (H2K_LEASE_LOST when it does not). */
  setProgress(id: string, progress: unknown): void {
    this.guard('Cannot record progress', () => {
      const now = storeNowSql(this.db)
      const {changes} = this.db.run(`UPDATE jobs SET progress_json = ? WHERE id = ? AND status = 'running' AND leased_by = ? AND lease_until > ${now.sql}`, [JSON.stringify(progress), id, this.nodeId, ...now.params])
      if (changes !== 1) throw leaseLost(id, 'cannot record progress')
    })
  }

  /** Renew the leases of the jobs this node runs; returns the ids still held (the others were lost). */
  renew(ids: readonly string[]): Set<string> {
    if (ids.length === 0) return new Set()
    return this.guard('Cannot renew job leases', () => {
      const now = storeNowSql(this.db)
      const marks = ids.map(() => '?').join(', ')
      // The store's time appears twice; SQLite's parameter is bound twice (same value), PostgreSQL's is SQL.
      const rows = this.db.all<{id: string}>(
        `UPDATE jobs SET lease_until = ${now.sql} + ? WHERE leased_by = ? AND status = 'running' AND lease_until > ${now.sql} AND id IN (${marks}) RETURNING id`,
        [...now.params, this.ttlMs(), this.nodeId, ...now.params, ...ids],
      )
      return new Set(rows.map((r) => r.id))
    })
  }

  /** Running jobs whose lease ran out (oldest first), at most `limit`. */
  expired(limit = 100): ExpiredLease[] {
    return this.guard('Cannot read job leases', () => {
      const now = storeNowSql(this.db)
      return this.db.all<ExpiredLease>(`SELECT id, leased_by, lease_until, output_path, source_path FROM jobs WHERE status = 'running' AND lease_until < ${now.sql} ORDER BY lease_until LIMIT ?`, [...now.params, limit])
    })
  }

  /**
   * Take an expired lease over: one UPDATE conditional on the old lease values makes this node its holder
   * (exactly one taker wins); its open attempt ends `lease-lost` (`interrupted` for a restart's recovery).
   * The caller then clears the partial outputs and re-queues it (`requeue`, whose history line names the
   * node that lost it) while it holds the lease, so no node starts the job before its leftovers are gone.
   * False: another node was first.
   */
  takeOver(lease: ExpiredLease, attemptOutcome = 'lease-lost'): boolean {
    return this.guard('Cannot take a job over', () =>
      this.db.transaction(() => {
        const now = storeNowSql(this.db)
        const {changes} = this.db.run(`UPDATE jobs SET leased_by = ?, lease_until = ${now.sql} + ? WHERE id = ? AND status = 'running' AND leased_by IS NOT DISTINCT FROM ? AND lease_until IS NOT DISTINCT FROM ?`, [this.nodeId, ...now.params, this.ttlMs(), lease.id, lease.leased_by, lease.lease_until])
        if (changes !== 1) return false
        this.store.endOpenAttempts(lease.id, attemptOutcome)
        return true
      }),
    )
  }

  /** After `takeOver` and the clearing of its outputs: back to queued (attempts as they were: the node died, not the job). */
  requeue(id: string, detail: string): JobRow {
    return this.transition(id, 'queued', detail, {progress_json: null})
  }
}
