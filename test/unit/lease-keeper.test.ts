import assert from 'node:assert/strict'
import {join} from 'node:path'

import type {H2KError} from '@hyper2kvm/plugin-api'
import {fenceAfterMs, mustFence} from '../../src/cluster/fence-rule.js'
import {JobLeases} from '../../src/cluster/job-leases.js'
import {LeaseKeeper} from '../../src/cluster/lease-keeper.js'
import {NodeRegistry} from '../../src/cluster/node-registry.js'
import {StoreOutage} from '../../src/cluster/store-outage.js'
import {JobStore} from '../../src/daemon/store.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const CLUSTER_NODES = `CREATE TABLE cluster_nodes (node_id TEXT PRIMARY KEY, hostname TEXT NOT NULL, pid INTEGER NOT NULL, started_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL,
  state TEXT NOT NULL, running_jobs INTEGER NOT NULL DEFAULT 0, max_concurrent_jobs INTEGER NOT NULL DEFAULT 0, version TEXT)`

describe('lease keeper: renewal, take-over and the self-fencing decision (fake clock, real store)', () => {
  let temp: ReturnType<typeof makeTempDir>
  let store: JobStore
  beforeEach(() => {
    temp = makeTempDir('h2k-keeper-')
    store = JobStore.open({sqlitePath: join(temp.dir, 'jobs.db')})
  })
  afterEach(() => {
    store.close()
    temp.cleanup()
  })

  it('θ = lease_ttl − 2 × heartbeat − B, and a node fences once no renewal succeeded for θ', () => {
    const theta = fenceAfterMs({heartbeatMs: 5000, leaseTtlMs: 30_000, statementBoundMs: 5000})
    assert.equal(theta, 15_000)
    assert.equal(mustFence(1000 + theta - 1, 1000, theta), false)
    assert.equal(mustFence(1000 + theta, 1000, theta), true)
  })

  it('fences after θ without a renewal (not before), aborting every running job with H2K_LEASE_LOST; lifts the fence when the store answers', async () => {
    let now = 1_000_000
    const logs: string[] = []
    const log = (_level: string, event: string) => void logs.push(event)
    const leases = new JobLeases(store, 'node-a', () => 30_000)
    const registry = new NodeRegistry(store.sql, 'node-a', {maxConcurrentJobs: () => 2})
    registry.register(30_000)
    for (const id of ['j1', 'j2']) {
      store.insertJob({definition_json: '{}', id, name: id, output_path: join(temp.dir, id), source_path: `${id}.raw`, vm_path: `/in/${id}.raw`})
      assert.ok(leases.claim(id, () => 'attempt'))
    }
    const running = new Set(['j1', 'j2'])
    const aborted: Array<[string, string]> = []
    let pumps = 0
    const keeper = new LeaseKeeper({
      abort: (id, error: H2KError) => aborted.push([id, error.code]),
      leases,
      log,
      now: () => now,
      outage: new StoreOutage(log),
      pump: () => void pumps++,
      registry,
      running: () => [...running],
      state: () => 'running',
      timing: () => ({heartbeatMs: 5000, leaseTtlMs: 30_000, statementBoundMs: 5000}),
    })
    await keeper.tick()
    assert.equal(keeper.fenced, false)
    assert.deepEqual(aborted, [])
    assert.equal(pumps, 1)
    // The store starts failing every heartbeat (a real failing statement: its table is gone).
    store.sql.exec('DROP TABLE cluster_nodes')
    const renewedAt = now
    for (const step of [5000, 10_000, 14_999]) {
      now = renewedAt + step
      await keeper.tick()
      assert.equal(keeper.fenced, false, `not fenced ${step} ms after the last renewal`)
    }
    assert.deepEqual(aborted, [])
    now = renewedAt + 15_000
    await keeper.tick()
    assert.equal(keeper.fenced, true)
    assert.deepEqual(aborted.sort(), [['j1', 'H2K_LEASE_LOST'], ['j2', 'H2K_LEASE_LOST']])
    assert.ok(logs.includes('cluster:fenced'))
    // The store answers again: registered anew, unfenced, the pump runs.
    store.sql.exec(CLUSTER_NODES)
    running.clear()
    now += 5000
    await keeper.tick()
    assert.equal(keeper.fenced, false)
    assert.ok(logs.includes('cluster:unfenced'))
    assert.equal(registry.nodes()[0]?.node_id, 'node-a')
    assert.equal(pumps, 2)
  })

  it('a store that fails after the heartbeat, while expired leases are looked for, is logged and the tick still ends (it runs from a timer: a rejection would end the daemon)', async () => {
    const logs: string[] = []
    const log = (_level: string, event: string) => void logs.push(event)
    const registry = new NodeRegistry(store.sql, 'node-a', {maxConcurrentJobs: () => 2})
    registry.register(30_000)
    let pumps = 0
    const keeper = new LeaseKeeper({
      abort: () => assert.fail('nothing runs'),
      leases: new JobLeases(store, 'node-a', () => 30_000),
      log,
      outage: new StoreOutage(log),
      pump: () => void pumps++,
      registry,
      running: () => [],
      state: () => 'running',
      timing: () => ({heartbeatMs: 5000, leaseTtlMs: 30_000, statementBoundMs: 5000}),
    })
    // The heartbeat (cluster_nodes) still works; the look for expired leases (jobs) fails, a real failing statement.
    store.sql.exec('ALTER TABLE jobs RENAME TO jobs_elsewhere')
    await keeper.tick()
    assert.deepEqual(logs, ['take-over:error'])
    assert.equal(pumps, 1, 'the pump still runs')
    assert.equal(keeper.fenced, false, 'the heartbeat succeeded')
    store.sql.exec('ALTER TABLE jobs_elsewhere RENAME TO jobs')
  })

  it('a running job whose renewal finds the lease gone is aborted alone; expired leases of others are re-queued with their outputs removed', async () => {
    const {mkdirSync, writeFileSync, existsSync} = await import('node:fs')
    const log = () => undefined
    const mine = new JobLeases(store, 'node-a', () => 30_000)
    const other = new JobLeases(store, 'node-dead', () => 1)
    const registry = new NodeRegistry(store.sql, 'node-a', {maxConcurrentJobs: () => 2})
    registry.register(30_000)
    for (const id of ['mine', 'lost', 'dead']) store.insertJob({definition_json: '{}', id, name: id, output_path: join(temp.dir, id), source_path: `${id}.raw`, vm_path: `/in/${id}.raw`})
    assert.ok(mine.claim('mine', () => 'attempt'))
    assert.ok(mine.claim('lost', () => 'attempt'))
    assert.ok(other.claim('dead', () => 'attempt'))
    store.startAttempt('dead')
    mkdirSync(join(temp.dir, 'dead'))
    writeFileSync(join(temp.dir, 'dead', 'disk.qcow2.part'), 'partial')
    // 'lost' was taken from this node (its lease moved on): the renewal does not find it.
    store.sql.run("UPDATE jobs SET leased_by = 'node-b' WHERE id = 'lost'")
    const aborted: string[] = []
    const keeper = new LeaseKeeper({abort: (id) => aborted.push(id), leases: mine, log, outage: new StoreOutage(log), pump: () => undefined, registry, running: () => ['mine', 'lost'], state: () => 'running', timing: () => ({heartbeatMs: 5000, leaseTtlMs: 30_000, statementBoundMs: 0})})
    await new Promise((resolve) => setTimeout(resolve, 20))
    await keeper.tick()
    assert.deepEqual(aborted, ['lost'])
    const dead = store.job('dead')!
    assert.equal(dead.status, 'queued')
    assert.equal(dead.leased_by, null)
    assert.equal(existsSync(join(temp.dir, 'dead')), false, 'the partial output was removed before the re-queue')
    const details = store.historyOf('dead').map((h) => h.detail ?? '')
    assert.deepEqual(store.historyOf('dead').map((h) => h.to_status), ['queued', 'running', 'queued'])
    assert.match(details[2]!, /lease of node node-dead expired: taken over and re-queued by node node-a, partial outputs removed/)
    assert.equal(store.job('mine')!.status, 'running', 'its own running job stays')
    assert.equal(store.attemptsOf('dead')[0]?.outcome, 'lease-lost')
  })
})
