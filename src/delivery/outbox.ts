import {randomUUID} from 'node:crypto'

import {mapForeignError} from '../errors/map-foreign-error.js'
import type {SqlDb} from '../store/sql-db.js'

export type OutboxStatus = 'pending' | 'delivered' | 'failed'

export interface OutboxRow {
  id: string
  channel: string
  event: string
  payload_json: string
  created_at: number
  attempts: number
  next_attempt_at: number
  status: OutboxStatus
  last_error: string | null
  updated_at: number
}

/** ` AND channel NOT IN (?, ?…)` for `n` channels (none: nothing). */
const notIn = (n: number): string => (n === 0 ? '' : ` AND channel NOT IN (${Array.from({length: n}, () => '?').join(', ')})`)

/** Delivered and given-up rows are kept this long (for forensics), then purged at open. */
const KEEP_MS = 7 * 86_400_000

/**
 * The persistent outbox (table notification_outbox, migration 6): one row per message and channel, on the
 * job store's connection. Each daemon delivers only the rows it wrote (`node_id`): several daemons share
 * one PostgreSQL store. A SQLite store has one daemon: at open it adopts every pending row (those of its
 * earlier runs, whatever their node id).
 */
export class Outbox {
  private constructor(
    private readonly db: SqlDb,
    /** This daemon's node id: the rows it writes and delivers. */
    readonly nodeId: string,
    /** Whether close() closes the connection (an outbox opened on its own file). */
    private readonly ownsConnection: boolean,
  ) {}

  /**
   * The outbox on the job store's connection for node `nodeId`; the table comes from the store's migrations.
   * `closeConnection`: close() closes the connection too (an outbox on a file of its own: tests, tools).
   */
  static on(db: SqlDb, nodeId: string, options: {now?: number; closeConnection?: boolean} = {}): Outbox {
    try {
      const outbox = new Outbox(db, nodeId, options.closeConnection === true)
      outbox.prepare(options.now ?? Date.now())
      return outbox
    } catch (error) {
      throw mapForeignError(error, {operation: 'Cannot open the notification outbox', path: db.location})
    }
  }

  /** Purge old finished rows; on SQLite (one daemon per store) adopt the pending rows of earlier runs. */
  private prepare(now: number): void {
    this.db.run("DELETE FROM notification_outbox WHERE status <> 'pending' AND updated_at < ?", [now - KEEP_MS])
    if (this.db.engine === 'sqlite') this.db.run("UPDATE notification_outbox SET node_id = ? WHERE status = 'pending' AND node_id IS DISTINCT FROM ?", [this.nodeId, this.nodeId])
    // PostgreSQL: rows of a store older than node ids have none; the first daemon to start delivers them.
    else this.db.run("UPDATE notification_outbox SET node_id = ? WHERE status = 'pending' AND node_id IS NULL", [this.nodeId])
  }

  /** The column that orders rows by insertion: SQLite's rowid, PostgreSQL's `seq`. */
  private get insertion(): string {
    return this.db.engine === 'sqlite' ? 'rowid' : 'seq'
  }

  add(channel: string, event: string, payload: unknown, now = Date.now()): string {
    const id = randomUUID()
    this.db.run("INSERT INTO notification_outbox (id, channel, event, payload_json, created_at, attempts, next_attempt_at, status, updated_at, node_id) VALUES (?, ?, ?, ?, ?, 0, ?, 'pending', ?, ?)", [id, channel, event, JSON.stringify(payload), now, now, now, this.nodeId])
    return id
  }

  /** Pending rows of this node due at `now`, oldest first (queue order among equals), none of the `busy` channels. */
  due(now: number, limit: number, skip: ReadonlySet<string>, busy: ReadonlySet<string> = new Set()): OutboxRow[] {
    const rows = this.db.all<OutboxRow & {seq?: number; node_id?: string}>(
      `SELECT * FROM notification_outbox WHERE node_id = ? AND status = 'pending' AND next_attempt_at <= ?${notIn(busy.size)} ORDER BY next_attempt_at, created_at, ${this.insertion} LIMIT ?`,
      [this.nodeId, now, ...busy, limit + skip.size],
    )
    return rows
      .filter((r) => !skip.has(r.id))
      .slice(0, limit)
      .map(({seq: _seq, node_id: _node, ...row}) => row)
  }

  /** When this node's next pending row is due (undefined: none pending), not counting the `busy` channels' rows. */
  nextDue(skip: ReadonlySet<string>, busy: ReadonlySet<string> = new Set()): number | undefined {
    const rows = this.db.all<{id: string; next_attempt_at: number}>(`SELECT id, next_attempt_at FROM notification_outbox WHERE node_id = ? AND status = 'pending'${notIn(busy.size)} ORDER BY next_attempt_at LIMIT ?`, [this.nodeId, ...busy, skip.size + 1])
    return rows.find((r) => !skip.has(r.id))?.next_attempt_at
  }

  /** Whether the row is still waiting for delivery. */
  isPending(id: string): boolean {
    return this.db.get("SELECT 1 FROM notification_outbox WHERE id = ? AND status = 'pending'", [id]) !== undefined
  }

  /** A newer message in place of a pending one (same id and place in the queue); false when it is no longer pending. */
  replace(id: string, event: string, payload: unknown, now = Date.now()): boolean {
    return this.db.run("UPDATE notification_outbox SET event = ?, payload_json = ?, updated_at = ? WHERE id = ? AND status = 'pending'", [event, JSON.stringify(payload), now, id]).changes === 1
  }

  delivered(id: string, attempts: number, now = Date.now()): void {
    this.db.run("UPDATE notification_outbox SET status = 'delivered', attempts = ?, last_error = NULL, updated_at = ? WHERE id = ?", [attempts, now, id])
  }

  failed(id: string, attempts: number, reason: string, now = Date.now()): void {
    this.db.run("UPDATE notification_outbox SET status = 'failed', attempts = ?, last_error = ?, updated_at = ? WHERE id = ?", [attempts, reason, now, id])
  }

  retryAt(id: string, attempts: number, at: number, reason: string, now = Date.now()): void {
    this.db.run('UPDATE notification_outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?', [attempts, at, reason, now, id])
  }

  /** This node's messages still waiting for delivery. */
  pendingCount(): number {
    return this.db.get<{n: number}>("SELECT COUNT(*) AS n FROM notification_outbox WHERE node_id = ? AND status = 'pending'", [this.nodeId])?.n ?? 0
  }

  /** This node's rows by status. */
  counts(): Record<OutboxStatus, number> {
    const out: Record<OutboxStatus, number> = {delivered: 0, failed: 0, pending: 0}
    for (const r of this.db.all<{status: OutboxStatus; n: number}>('SELECT status, COUNT(*) AS n FROM notification_outbox WHERE node_id = ? GROUP BY status', [this.nodeId])) out[r.status] = r.n
    return out
  }

  /** Closes the connection only when the outbox opened it (on the job store's, the store closes it). */
  close(): void {
    if (this.ownsConnection) this.db.close()
  }
}
