import type {SqlDb} from '../../store/sql-db.js'
import {columnTypes} from './column-types.js'
import type {Migration} from './migration.js'

/**
 * Migration 5: several daemons ("nodes") sharing one store. Times are ms epochs of the store's clock
 * (PostgreSQL: the server's; SQLite: the one host's), so nodes with skewed clocks agree on who expired.
 * - `cluster_nodes`: one row per daemon that ever ran on the store, its heartbeat and what it is doing.
 * - `jobs.leased_by` / `jobs.lease_until`: the node running a job and until when its lease holds; a running
 *   job's outcome is written only by the node holding an unexpired lease, and an expired lease lets
 *   another node re-queue the job (exactly once: one conditional UPDATE).
 * - `intake_claims`: a dropped file becomes an item through one row keyed by its path and identity,
 *   inserted before the rename: exactly one node wins a file of a shared drop directory. `claim_id` names
 *   the claim directory in processing/ (recovery finds a directory's owner by it); `settling_at` is set by
 *   the one node that settles the claim (whoever ran its last job), `settled_at` once it left processing/.
 * - `cluster_commands`: ctl pause|resume|drain|stop --all, written once and picked up by every node.
 */
export const clusterMigration: Migration = {
  name: 'cluster',
  up(db: SqlDb): void {
    const {bigint, serialKey} = columnTypes(db)
    db.exec(`
ALTER TABLE jobs ADD COLUMN leased_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until ${bigint};
CREATE INDEX jobs_lease ON jobs(status, lease_until);
CREATE TABLE cluster_nodes (
  node_id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at ${bigint} NOT NULL,
  heartbeat_at ${bigint} NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('running','paused','draining','stopping','stopped')),
  running_jobs INTEGER NOT NULL DEFAULT 0,
  max_concurrent_jobs INTEGER NOT NULL DEFAULT 0,
  version TEXT
);
CREATE TABLE intake_claims (
  path TEXT NOT NULL,
  identity TEXT NOT NULL,
  claim_id TEXT NOT NULL UNIQUE,
  node_id TEXT NOT NULL,
  claimed_at ${bigint} NOT NULL,
  settling_at ${bigint},
  settled_at ${bigint},
  PRIMARY KEY (path, identity)
);
CREATE INDEX intake_claims_node ON intake_claims(node_id, settled_at);
CREATE INDEX intake_claims_settled ON intake_claims(settled_at);
CREATE TABLE cluster_commands (
  id ${serialKey},
  command TEXT NOT NULL CHECK (command IN ('pause','resume','drain','stop')),
  target_node TEXT,
  issued_at ${bigint} NOT NULL,
  issued_by TEXT NOT NULL
);
CREATE TABLE cluster_command_acks (
  command_id ${bigint} NOT NULL REFERENCES cluster_commands(id) ON DELETE CASCADE,
  node_id TEXT NOT NULL,
  acked_at ${bigint} NOT NULL,
  PRIMARY KEY (command_id, node_id)
);
`)
  },
  version: 5,
}
