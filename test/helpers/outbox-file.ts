import {applyMigrations} from '../../src/daemon/migrations/apply-migrations.js'
import {MIGRATIONS} from '../../src/daemon/migrations/index.js'
import {Outbox} from '../../src/delivery/outbox.js'
import {SqliteDb} from '../../src/store/sqlite-db.js'

/** An outbox on a SQLite file of its own (the job store's migrations applied), node `nodeId`; close() closes the file. */
export function openOutbox(path: string, nodeId = 'test-node'): Outbox {
  const db = SqliteDb.open(path)
  applyMigrations(db, MIGRATIONS)
  return Outbox.on(db, nodeId, {closeConnection: true})
}
