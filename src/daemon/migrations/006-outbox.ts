import type {SqlDb} from '../../store/sql-db.js'
import {columnTypes} from './column-types.js'
import type {Migration} from './migration.js'

/**
 * Migration 6: `notification_outbox` (src/delivery/outbox.ts), one row per message and channel, written
 * before it is sent. `node_id`: the daemon that wrote it and delivers it — several daemons share one
 * PostgreSQL store, and each delivers only its own rows. SQLite stores of earlier builds already have the
 * table (the outbox created it itself at open): it is kept, and gains the column (its rows: NULL, adopted
 * by the daemon at its next start). PostgreSQL's `seq` stands in for SQLite's rowid (queue order among equals).
 */
export const outboxMigration: Migration = {
  name: 'notification outbox',
  up(db: SqlDb): void {
    const {bigint} = columnTypes(db)
    const postgres = db.engine === 'postgres'
    db.exec(`
CREATE TABLE IF NOT EXISTS notification_outbox (
  ${postgres ? 'seq BIGSERIAL NOT NULL UNIQUE,\n  ' : ''}id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  event TEXT NOT NULL,
  payload_json TEXT NOT NULL,
  created_at ${bigint} NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at ${bigint} NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending','delivered','failed')),
  last_error TEXT,
  updated_at ${bigint} NOT NULL,
  node_id TEXT
);
CREATE INDEX IF NOT EXISTS notification_outbox_due ON notification_outbox(status, next_attempt_at);
`)
    if (!postgres && !db.all<{name: string}>("SELECT name FROM pragma_table_info('notification_outbox')").some((c) => c.name === 'node_id')) {
      db.exec('ALTER TABLE notification_outbox ADD COLUMN node_id TEXT')
    }
    db.exec('CREATE INDEX notification_outbox_node ON notification_outbox(node_id, status, next_attempt_at)')
  },
  version: 6,
}
