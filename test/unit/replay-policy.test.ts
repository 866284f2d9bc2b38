import {strict as assert} from 'node:assert'

import {isReplayable} from '../../src/store/replay-policy.js'

/** Statements that running twice cannot change: replayed on a new connection after a broken one. */
const REPLAYABLE = [
  'SELECT * FROM jobs WHERE id = $1',
  '  select count(*) AS n FROM jobs',
  'VALUES (1)',
  'SHOW server_version',
  'SELECT n FROM t ORDER BY n',
  "SELECT * FROM jobs WHERE status IN ('queued','running') ORDER BY created_at",
]

/** Statements with effects: never replayed blindly (their outcome is unknown after a broken connection). */
const NOT_REPLAYABLE = [
  'INSERT INTO t (n) VALUES ($1)',
  'UPDATE jobs SET status = $1',
  'DELETE FROM jobs',
  'WITH x AS (DELETE FROM t RETURNING n) SELECT * FROM x',
  'SELECT * FROM jobs WHERE status = $1 FOR UPDATE SKIP LOCKED',
  'SELECT * FROM jobs FOR NO KEY UPDATE',
  'SELECT * FROM jobs FOR SHARE',
  'SELECT * FROM jobs for key share',
  "SELECT nextval('seq')",
  "SELECT setval('seq', 5)",
  "SELECT pg_notify($1, '')",
  'SELECT pg_advisory_lock(42)',
  'SELECT pg_try_advisory_xact_lock(42)',
  "SELECT set_config('x.y', '1', false)",
  'SELECT * INTO copy FROM jobs',
  'NOTIFY h2k_jobs',
  'SELECT 1; DELETE FROM jobs',
  'BEGIN',
]

describe('replay policy: which statements may run again after their connection broke', () => {
  for (const sql of REPLAYABLE) it(`replays ${sql.trim()}`, () => assert.equal(isReplayable(sql), true))
  for (const sql of NOT_REPLAYABLE) it(`never replays ${sql}`, () => assert.equal(isReplayable(sql), false))
})
