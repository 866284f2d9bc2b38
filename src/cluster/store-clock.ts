import {nowMsSql} from '../store/store-clock.js'
import type {SqlDb, SqlValue} from '../store/sql-db.js'

/**
 * The store's time for leases and heartbeats, from the one expression of it (src/store/store-clock.ts): on
 * PostgreSQL the server's clock, so nodes whose own clocks are skewed still agree on who expired; on SQLite
 * (one host) the host's. `sql` goes inside the statement that compares against it or stores it.
 */
export interface StoreNow {
  sql: string
  params: SqlValue[]
}

/** The store's time as an SQL expression (ms since the epoch) for a statement that compares or stores it. */
export function storeNowSql(db: SqlDb): StoreNow {
  return {params: [], sql: nowMsSql(db.engine)}
}

/** The store's time now (ms since the epoch): one round trip. */
export function storeNow(db: SqlDb): number {
  return Number(db.get<{now: number | string}>(`SELECT ${nowMsSql(db.engine)} AS now`)?.now)
}
