import {H2KError} from '@hyper2kvm/plugin-api'
import type {Migration} from './migration.js'
import type {SqlDb} from '../../store/sql-db.js'
import type {SqliteDb} from '../../store/sqlite-db.js'

export interface AppliedMigration {
  version: number
  name: string
  applied_at: string
}

const SCHEMA_MIGRATIONS = 'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)'

/**
 * The key of the PostgreSQL advisory lock that serialises the migrations of daemons opening one store at
 * the same time (an arbitrary constant: "h2k" and 14, the issue that introduced it).
 */
export const MIGRATION_LOCK_KEY = 0x68_32_6b_0e

/** The migrations recorded in a store (none for a store older than migrations, or a read-only one never migrated). */
export function appliedMigrations(db: SqlDb): AppliedMigration[] {
  const exists =
    db.engine === 'sqlite'
      ? db.get("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'") !== undefined
      : db.get<{present: number}>("SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE 1 END AS present")?.present === 1
  if (!exists) return []
  return db.all<AppliedMigration>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
}

/**
 * Apply the migrations a store has not had yet, in order, each in its own transaction, and return the
 * versions applied now. A second process opening the store at the same time waits for the first (SQLite:
 * an IMMEDIATE transaction; PostgreSQL: pg_advisory_xact_lock inside each migration's transaction), then
 * finds the migration applied and skips it.
 */
export function applyMigrations(db: SqlDb, migrations: readonly Migration[]): number[] {
  const ordered = [...migrations].sort((a, b) => a.version - b.version)
  return db.engine === 'sqlite' ? applySqlite(db as SqliteDb, ordered) : applyPostgres(db, ordered)
}

function record(db: SqlDb, migration: Migration): void {
  db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [migration.version, migration.name, new Date().toISOString()])
}

const isApplied = (db: SqlDb, migration: Migration): boolean => db.get('SELECT 1 FROM schema_migrations WHERE version = ?', [migration.version]) !== undefined

/** PostgreSQL: DDL is transactional, CHECK constraints are altered in place, foreign keys stay on. */
function applyPostgres(db: SqlDb, migrations: readonly Migration[]): number[] {
  const locked = (): void => void db.get('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY])
  // Under the lock too: two sessions racing on CREATE TABLE IF NOT EXISTS can both try to create it.
  db.transaction(() => {
    locked()
    db.exec(SCHEMA_MIGRATIONS)
  })
  const applied: number[] = []
  for (const migration of migrations) {
    const ran = db.transaction(() => {
      locked()
      if (isApplied(db, migration)) return false
      migration.up(db)
      record(db, migration)
      return true
    })
    if (ran) applied.push(migration.version)
  }
  return applied
}

/**
 * SQLite: foreign keys are off while a migration runs (a table rebuild needs it) and checked before its
 * commit; each migration in an IMMEDIATE transaction (the write lock from its start).
 */
function applySqlite(sql: SqliteDb, migrations: readonly Migration[]): number[] {
  const db = sql.raw
  db.exec(SCHEMA_MIGRATIONS)
  const applied: number[] = []
  const foreignKeys = Number(db.pragma('foreign_keys', {simple: true})) === 1
  db.pragma('foreign_keys = OFF')
  try {
    for (const migration of migrations) {
      const ran = db.transaction(() => {
        if (isApplied(sql, migration)) return false
        migration.up(sql)
        const broken = db.pragma('foreign_key_check') as unknown[]
        if (broken.length > 0) {
          throw new H2KError('H2K_STORE_FAILED', `Migration ${migration.version} (${migration.name}) would leave ${broken.length} broken reference(s) in the job store; nothing was changed.`, {details: {version: migration.version}})
        }
        record(sql, migration)
        return true
      }).immediate()
      if (ran) applied.push(migration.version)
    }
  } finally {
    if (foreignKeys) db.pragma('foreign_keys = ON')
  }
  return applied
}
