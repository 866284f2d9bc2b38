/**
 * A separate process racing for job leases (test/integration/cluster-leases.test.ts): opens the store named
 * by H2K_TEST_STORE (a StoreTarget as JSON), waits for the instant H2K_TEST_AT, then as node H2K_TEST_NODE
 * either claims every job id given on the command line (`claim`) or takes over every expired lease it
 * sees (`take-over`), and prints the ids it won as JSON.
 */
import {JobLeases} from '../../src/cluster/job-leases.js'
import {JobStore} from '../../src/daemon/store.js'
import type {StoreTarget} from '../../src/store/store-target.js'

const target = JSON.parse(process.env.H2K_TEST_STORE ?? '{}') as StoreTarget
const store = JobStore.open(target)
const leases = new JobLeases(store, process.env.H2K_TEST_NODE ?? 'node', () => 60_000)
const [mode, ...ids] = process.argv.slice(2)
const at = Number(process.env.H2K_TEST_AT ?? 0)
while (Date.now() < at) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2)
const won: string[] = []
if (mode === 'claim') {
  for (const id of ids) if (leases.claim(id, (n) => `attempt ${n}`) !== undefined) won.push(id)
} else if (mode === 'take-over') {
  for (const lease of leases.expired(1000)) if (leases.takeOver(lease)) won.push(lease.id)
} else {
  throw new Error(`unknown mode ${String(mode)}`)
}
store.close()
process.stdout.write(`${JSON.stringify(won)}\n`)
