import type {SqlDb} from '../../store/sql-db.js'

/**
 * One numbered change of the job store's schema (`src/daemon/migrations/NNN-name.ts`, listed in index.ts).
 * `up` runs once per store, in its own transaction, with foreign keys off (a table rebuild needs that);
 * the runner checks the foreign keys before it commits.
 */
export interface Migration {
  version: number
  name: string
  up(db: SqlDb): void
}
