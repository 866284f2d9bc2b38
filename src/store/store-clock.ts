import type {SqlEngine} from './sql-db.js'

/**
 * "Now" as an SQL expression in ms since the epoch, on the store's clock: PostgreSQL's server clock (every
 * node of a cluster agrees on it, whatever their own clocks say), SQLite's (the one host's).
 */
export function nowMsSql(engine: SqlEngine): string {
  return engine === 'postgres' ? "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)" : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
}
