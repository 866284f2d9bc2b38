import {randomUUID} from 'node:crypto'

import Database from 'better-sqlite3'

import {mapForeignError} from '../errors/map-foreign-error.js'

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

/** Its own table in the daemon's store (never the job tables): a message is written before it is sent. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS notification_outbox (
  id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  event TEXT NOT NULL,
  payload_json TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending','delivered','failed')),
  last_error TEXT,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_outbox_due ON notification_outbox(status, next_attempt_at);
`

/** ` AND channel NOT IN (?, ?…)` for `n` channels (none: nothing). */
const notIn = (n: number): string => (n === 0 ? '' : ` AND channel NOT IN (${Array.from({length: n}, () => '?').join(', ')})`)

/** Delivered and given-up rows are kept this long (for `sqlite3` forensics), then purged at open. */
const KEEP_MS = 7 * 86_400_000

/** The persistent outbox: one row per message and channel (SQLite, WAL, its own connection). */
export class Outbox {
  private constructor(private readonly db: Database.Database) {}

  static open(path: string, now = Date.now()): Outbox {
    try {
      const db = new Database(path)
      db.pragma('busy_timeout = 5000')
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      db.exec(SCHEMA)
      db.prepare("DELETE FROM notification_outbox WHERE status != 'pending' AND updated_at < ?").run(now - KEEP_MS)
      return new Outbox(db)
    } catch (error) {
      throw mapForeignError(error, {operation: 'Cannot open the notification outbox', path})
    }
  }

  add(channel: string, event: string, payload: unknown, now = Date.now()): string {
    const id = randomUUID()
    this.db
      .prepare("INSERT INTO notification_outbox (id, channel, event, payload_json, created_at, attempts, next_attempt_at, status, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, 'pending', ?)")
      .run(id, channel, event, JSON.stringify(payload), now, now, now)
    return id
  }

  /** Pending rows due at `now`, oldest first (queue order among equals), none of the `busy` channels. */
  due(now: number, limit: number, skip: ReadonlySet<string>, busy: ReadonlySet<string> = new Set()): OutboxRow[] {
    const rows = this.db
      .prepare(`SELECT * FROM notification_outbox WHERE status = 'pending' AND next_attempt_at <= ?${notIn(busy.size)} ORDER BY next_attempt_at, created_at, rowid LIMIT ?`)
      .all(now, ...busy, limit + skip.size) as OutboxRow[]
    return rows.filter((r) => !skip.has(r.id)).slice(0, limit)
  }

  /** When the next pending row is due (undefined: none pending), not counting the `busy` channels' rows. */
  nextDue(skip: ReadonlySet<string>, busy: ReadonlySet<string> = new Set()): number | undefined {
    const rows = this.db
      .prepare(`SELECT id, next_attempt_at FROM notification_outbox WHERE status = 'pending'${notIn(busy.size)} ORDER BY next_attempt_at LIMIT ?`)
      .all(...busy, skip.size + 1) as Array<{id: string; next_attempt_at: number}>
    return rows.find((r) => !skip.has(r.id))?.next_attempt_at
  }

  /** Whether the row is still waiting for delivery. */
  isPending(id: string): boolean {
    return this.db.prepare("SELECT 1 FROM notification_outbox WHERE id = ? AND status = 'pending'").get(id) !== undefined
  }

  /** A newer message in place of a pending one (same id and place in the queue); false when it is no longer pending. */
  replace(id: string, event: string, payload: unknown, now = Date.now()): boolean {
    return this.db.prepare("UPDATE notification_outbox SET event = ?, payload_json = ?, updated_at = ? WHERE id = ? AND status = 'pending'").run(event, JSON.stringify(payload), now, id).changes === 1
  }

  delivered(id: string, attempts: number, now = Date.now()): void {
    this.db.prepare("UPDATE notification_outbox SET status = 'delivered', attempts = ?, last_error = NULL, updated_at = ? WHERE id = ?").run(attempts, now, id)
  }

  failed(id: string, attempts: number, reason: string, now = Date.now()): void {
    this.db.prepare("UPDATE notification_outbox SET status = 'failed', attempts = ?, last_error = ?, updated_at = ? WHERE id = ?").run(attempts, reason, now, id)
  }

  retryAt(id: string, attempts: number, at: number, reason: string, now = Date.now()): void {
    this.db.prepare('UPDATE notification_outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?').run(attempts, at, reason, now, id)
  }

  /** Messages still waiting for delivery. */
  pendingCount(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM notification_outbox WHERE status = 'pending'").get() as {n: number}).n
  }

  counts(): Record<OutboxStatus, number> {
    const out: Record<OutboxStatus, number> = {delivered: 0, failed: 0, pending: 0}
    for (const r of this.db.prepare('SELECT status, COUNT(*) AS n FROM notification_outbox GROUP BY status').all() as Array<{status: OutboxStatus; n: number}>) out[r.status] = r.n
    return out
  }

  close(): void {
    this.db.close()
  }
}
