/**
 * A separate process racing for intake claims (test/integration/intake-claims.test.ts): opens the store named
 * by H2K_TEST_STORE (a StoreTarget as JSON) as node argv[2], waits for the instant H2K_TEST_AT, claims
 * `f0.raw` … `f<N-1>.raw` (N = argv[3]) with one identity each, and prints the paths it won as JSON.
 */
import {IntakeClaims} from '../../src/daemon/intake-claims.js'
import {JobStore} from '../../src/daemon/store.js'
import type {StoreTarget} from '../../src/store/store-target.js'

const target = JSON.parse(process.env.H2K_TEST_STORE ?? '{}') as StoreTarget
const node = process.argv[2] ?? 'node'
const count = Number(process.argv[3] ?? 0)
const store = JobStore.open(target)
const claims = new IntakeClaims(store.sql, node, () => 30_000)
// Alive, as the daemon's heartbeat says (a node without a fresh cluster_nodes row is dead to the others).
const now = Date.now()
store.sql.run("INSERT INTO cluster_nodes (node_id, hostname, pid, started_at, heartbeat_at, state) VALUES (?, 'racer', ?, ?, ?, 'running')", [node, process.pid, now, now + 120_000])
const at = Number(process.env.H2K_TEST_AT ?? 0)
while (Date.now() < at) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2)
const won: string[] = []
for (let i = 0; i < count; i++) {
  const path = `f${i}.raw`
  if (claims.claim(path, `s1-m${i}-i${i}`, `${node}-${i}`)) won.push(path)
}
store.close()
process.stdout.write(`${JSON.stringify(won)}\n`)
