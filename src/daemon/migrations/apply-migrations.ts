
import {H2KError} from '@hyper2kvm/plugin-api'
import type {Migration} from './migration.js'
import type {SqlDb} from '../../store/sql-db.js'
import type {SqliteDb} from '../../store/sqlite-db.js'

export interface AppliedMigration {
  version: number
  name: string
  applied_at: string
}

/** The migrations recorded in a store (none for a store older than migrations, or a read-only one never migrated). */
export function appliedMigrations(db: SqlDb): AppliedMigration[] {
  const exists = db.get("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
  if (!exists) return []
  return db.all<AppliedMigration>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
}

/**
 * Apply the migrations a store has not had yet, in order, each in its own IMMEDIATE transaction (a second
 * process opening the store at the same time waits, then finds it applied). Foreign keys are off while a
 * migration runs (a table rebuild needs it) and checked before its commit. Returns the versions applied now.
 */
export function applyMigrations(sql: SqliteDb, migrations: readonly Migration[]): number[] {
  const db = sql.raw
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)')
  const applied: number[] = []
  const foreignKeys = Number(db.pragma('foreign_keys', {simple: true})) === 1
  db.pragma('foreign_keys = OFF')
  try {
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      const ran = db.transaction(() => {
        if (db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(migration.version)) return false
        migration.up(sql)
        const broken = db.pragma('foreign_key_check') as unknown[]
        if (broken.length > 0) {
          throw new H2KError('H2K_STORE_FAILED', `Migration ${migration.version} (${migration.name}) would leave ${broken.length} broken reference(s) in the job store; nothing was changed.`, {details: {version: migration.version}})
        }
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, new Date().toISOString())
        return true
      }).immediate()
      if (ran) applied.push(migration.version)
    }
  } finally {
    if (foreignKeys) db.pragma('foreign_keys = ON')
  }
  return applied
}
