/**
 * A separate process doing one thing with a PostgreSQL store (test/integration/store-engines.test.ts):
 *   migrate  — apply the migrations to the store named by H2K_TEST_STORE (PostgresSettings as JSON), print
 *              the versions applied by THIS process as JSON (two of these race on a fresh database);
 *   idle     — open, query, LISTEN, close, then return from the script without process.exit: the process
 *              must end by itself (nothing of the driver thread keeps it alive).
 */
import {applyMigrations} from '../../src/daemon/migrations/apply-migrations.js'
import {MIGRATIONS} from '../../src/daemon/migrations/index.js'
import {PostgresDb} from '../../src/store/postgres-db.js'
import type {PostgresSettings} from '../../src/store/store-target.js'

const settings = JSON.parse(process.env.H2K_TEST_STORE ?? '{}') as PostgresSettings
const mode = process.argv[2]
const db = PostgresDb.open(settings)
if (mode === 'migrate') {
  // Both processes start their migrations at about the same instant: wait for the go file's time.
  const at = Number(process.env.H2K_TEST_AT ?? 0)
  while (Date.now() < at) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)
  const applied = applyMigrations(db, MIGRATIONS)
  db.close()
  process.stdout.write(`${JSON.stringify(applied)}\n`)
} else if (mode === 'idle') {
  db.get('SELECT 1 AS one')
  db.listen('h2k_idle', () => undefined)
  db.notify('h2k_idle')
  db.close()
  process.stdout.write('closed\n')
} else {
  db.close()
  throw new Error(`unknown mode ${String(mode)}`)
}
