import type {SqlDb} from '../../store/sql-db.js'

/**
 * The few column types that are spelled differently in the two engines' DDL; the rest of a migration's SQL
 * is the same text. SQLite's INTEGER is 64-bit; PostgreSQL needs BIGINT for ms epochs and byte sizes, and
 * BIGSERIAL for SQLite's INTEGER PRIMARY KEY AUTOINCREMENT.
 */
export function columnTypes(db: SqlDb): {serialKey: string; bigint: string} {
  return db.engine === 'sqlite' ? {bigint: 'INTEGER', serialKey: 'INTEGER PRIMARY KEY AUTOINCREMENT'} : {bigint: 'BIGINT', serialKey: 'BIGSERIAL PRIMARY KEY'}
}
