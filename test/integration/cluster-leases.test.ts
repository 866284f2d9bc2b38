import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {promisify} from 'node:util'

import {H2KError} from '@hyper2kvm/plugin-api'
import {JobLeases} from '../../src/cluster/job-leases.js'
import {NodeRegistry} from '../../src/cluster/node-registry.js'
import {storeNow} from '../../src/cluster/store-clock.js'
import {JobStore, type NewJobRow} from '../../src/daemon/store.js'
import type {StoreTarget} from '../../src/store/store-target.js'
import {usePgCluster} from '../helpers/pg-cluster.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const run = promisify(execFile)

const newJob = (id: string): NewJobRow => ({definition_json: JSON.stringify({id}), id, name: id, output_path: `/out/${id}`, source_path: `${id}.raw`, vm_path: `/in/${id}.raw`})
const isCode = (code: string) => (error: unknown): boolean => error instanceof H2KError && error.code === code

/** One racing process of test/helpers/lease-child.ts; resolves to the ids it won. */
async function leaseChild(target: StoreTarget, node: string, at: number, args: string[]): Promise<string[]> {
  const {stdout} = await run(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../helpers/lease-child.ts'), ...args], {
    env: {...process.env, H2K_TEST_AT: String(at), H2K_TEST_NODE: node, H2K_TEST_STORE: JSON.stringify(target)},
    timeout: 90_000,
  })
  return JSON.parse(stdout.trim()) as string[]
}

describe('job leases on both engines: claims, conditional outcome writes, renewal, take-over exactly once', function () {
  this.timeout(180_000)
  const pg = usePgCluster()
  let temp: ReturnType<typeof makeTempDir>
  let opened: JobStore[] = []
  before(() => (temp = makeTempDir('h2k-leases-')))
  after(() => temp.cleanup())
  afterEach(() => {
    for (const store of opened.reverse()) store.close()
    opened = []
  })

  const engines: Array<{name: string; fresh: () => Promise<StoreTarget>}> = [
    {fresh: async () => ({sqlitePath: join(temp.dir, `${randomUUID()}.db`)}), name: 'sqlite'},
    {fresh: async () => ({postgres: pg().settings(await pg().createDatabase()), sqlitePath: join(temp.dir, 'never-used.db')}), name: 'postgres'},
  ]
  /** Two connections to one store: two nodes. */
  const twoNodes = async (fresh: () => Promise<StoreTarget>, ttlMs = 60_000) => {
    const target = await fresh()
    const a = JobStore.open(target)
    const b = JobStore.open(target)
    opened.push(a, b)
    return {a: new JobLeases(a, 'node-a', () => ttlMs), b: new JobLeases(b, 'node-b', () => ttlMs), storeA: a, storeB: b, target}
  }

  for (const engine of engines) {
    describe(engine.name, () => {
      it('a job is claimed by exactly one node; the claim sets status, lease and attempts in one write', async () => {
        const {a, b, storeA} = await twoNodes(engine.fresh)
        storeA.insertJob(newJob('j1'))
        const won = a.claim('j1', (n) => `attempt ${n}`)
        assert.ok(won)
        assert.equal(won.status, 'running')
        assert.equal(won.leased_by, 'node-a')
        assert.equal(won.attempts, 1)
        assert.ok(Number(won.lease_until) > storeNow(storeA.sql) + 50_000)
        assert.equal(b.claim('j1', (n) => `attempt ${n}`), undefined, 'the second claim loses')
        assert.deepEqual(storeA.historyOf('j1').map((h) => h.to_status), ['queued', 'running'])
      })

      it('two processes racing for 40 jobs: every job is won by exactly one of them', async () => {
        const target = await engine.fresh()
        const store = JobStore.open(target)
        opened.push(store)
        const ids = Array.from({length: 40}, (_, i) => `race-${i}`)
        store.transaction(() => {
          for (const id of ids) store.insertJob(newJob(id))
        })
        // Both start at the same instant (after their imports), one in order, the other in reverse order.
        const at = Date.now() + 4000
        const [x, y] = await Promise.all([leaseChild(target, 'node-x', at, ['claim', ...ids]), leaseChild(target, 'node-y', at, ['claim', ...[...ids].reverse()])])
        assert.equal(x.length + y.length, ids.length, `every job won once (x ${x.length}, y ${y.length})`)
        assert.deepEqual(new Set([...x, ...y]), new Set(ids))
        for (const id of ids) {
          const row = store.job(id)!
          assert.equal(row.status, 'running')
          assert.equal(row.leased_by, x.includes(id) ? 'node-x' : 'node-y')
          assert.equal(store.historyOf(id).filter((h) => h.to_status === 'running').length, 1)
        }
      })

      it('an outcome write is refused (H2K_LEASE_LOST) once the lease expired, and by another node; the holder writes it', async () => {
        // A 2 s lease: the writes below must land within it on a loaded machine too.
        const {a, b, storeA} = await twoNodes(engine.fresh, 2000)
        storeA.insertJob(newJob('j2'))
        storeA.insertJob(newJob('j3'))
        assert.ok(a.claim('j2', () => 'attempt'))
        assert.ok(a.claim('j3', () => 'attempt'))
        assert.throws(() => b.transition('j2', 'succeeded', 'not mine'), isCode('H2K_LEASE_LOST'))
        assert.throws(() => b.setProgress('j2', {phase: 'x'}), isCode('H2K_LEASE_LOST'))
        a.setProgress('j2', {phase: 'convert'})
        const done = a.transition('j2', 'succeeded', 'done', {}, () => storeA.recordProcessed({file_hash: null, file_size: 1, filename: 'j2.raw', job_id: 'j2', output_path: '/out/j2'}))
        assert.equal(done.status, 'succeeded')
        assert.equal(done.leased_by, null, 'leaving running drops the lease')
        await sleep(2300)
        assert.throws(() => a.transition('j3', 'succeeded', 'too late', {}, () => storeA.recordProcessed({file_hash: null, file_size: 1, filename: 'j3.raw', job_id: 'j3', output_path: '/out/j3'})), isCode('H2K_LEASE_LOST'))
        assert.throws(() => a.setProgress('j3', {phase: 'convert'}), isCode('H2K_LEASE_LOST'))
        assert.equal(storeA.job('j3')!.status, 'running', 'nothing of the refused write')
        assert.equal(storeA.findProcessed('j3.raw', 1), undefined, 'nor of what went with it')
      })

      it('renewal keeps a lease alive past its ttl; a lost lease is not renewed', async () => {
        const {a, b, storeA} = await twoNodes(engine.fresh, 3000)
        storeA.insertJob(newJob('j4'))
        storeA.insertJob(newJob('j5'))
        assert.ok(a.claim('j4', () => 'attempt'))
        assert.ok(a.claim('j5', () => 'attempt'))
        for (let i = 0; i < 4; i++) {
          await sleep(1000)
          assert.deepEqual(a.renew(['j4']), new Set(['j4']))
        }
        // j4 lived 4 s on a 3 s lease (renewed every second, a 2 s margin for a stall); j5 was not renewed and expired.
        assert.deepEqual(a.expired().map((l) => l.id), ['j5'])
        assert.deepEqual(a.renew(['j4', 'j5']), new Set(['j4']), 'an expired lease is gone')
        assert.deepEqual(b.renew(['j4']), new Set(), 'another node renews nothing of it')
        a.transition('j4', 'succeeded', 'done')
      })

      it('an expired lease is taken over exactly once by racing nodes, then re-queued and claimable again', async () => {
        const target = await engine.fresh()
        const store = JobStore.open(target)
        opened.push(store)
        const dead = new JobLeases(store, 'node-dead', () => 300)
        const ids = Array.from({length: 20}, (_, i) => `exp-${i}`)
        store.transaction(() => {
          for (const id of ids) store.insertJob(newJob(id))
        })
        for (const id of ids) assert.ok(dead.claim(id, () => 'attempt'))
        await sleep(600)
        const at = Date.now() + 4000
        const [x, y] = await Promise.all([leaseChild(target, 'node-x', at, ['take-over']), leaseChild(target, 'node-y', at, ['take-over'])])
        assert.equal(x.length + y.length, ids.length, `each expired lease taken over once (x ${x.length}, y ${y.length})`)
        assert.deepEqual(new Set([...x, ...y]), new Set(ids))
        for (const id of ids) assert.equal(store.job(id)!.leased_by, x.includes(id) ? 'node-x' : 'node-y', 'the winner holds the lease')
        // The taker re-queues (this one holds exp-0's lease now), and then any node may claim it again.
        const taker = new JobLeases(store, x.includes('exp-0') ? 'node-x' : 'node-y', () => 60_000)
        assert.throws(() => new JobLeases(store, 'node-dead', () => 60_000).requeue('exp-0', 'not the taker'), isCode('H2K_LEASE_LOST'))
        const queued = taker.requeue('exp-0', 'partial outputs removed')
        assert.equal(queued.status, 'queued')
        assert.deepEqual(store.historyOf('exp-0').map((h) => h.to_status), ['queued', 'running', 'queued'])
        assert.equal(queued.leased_by, null)
        const again = new JobLeases(store, 'node-z', () => 60_000).claim('exp-0', (n) => `attempt ${n}`)
        assert.equal(again?.leased_by, 'node-z')
        assert.equal(again?.attempts, 2)
        assert.deepEqual(new JobLeases(store, 'node-w', () => 60_000).expired(), [], 'nothing left expired')
      })

      it('node registry: registered, heart-beating, stopped; the same node id alive on another host is refused', async () => {
        const target = await engine.fresh()
        const store = JobStore.open(target)
        opened.push(store)
        const registry = new NodeRegistry(store.sql, 'conv-01', {maxConcurrentJobs: () => 3, version: '1.0.0'})
        registry.register(30_000)
        registry.heartbeat('running', 2)
        const [row] = registry.nodes()
        assert.equal(row?.node_id, 'conv-01')
        assert.equal(row?.state, 'running')
        assert.equal(row?.running_jobs, 2)
        assert.equal(row?.pid, process.pid)
        registry.register(30_000)
        // Another host's live daemon with this id.
        store.sql.run("UPDATE cluster_nodes SET hostname = 'elsewhere', pid = 1 WHERE node_id = 'conv-01'")
        assert.throws(() => registry.register(30_000), isCode('H2K_DAEMON_RUNNING'))
        // Its heartbeat went stale (or it stopped): the id is free again.
        store.sql.run("UPDATE cluster_nodes SET state = 'stopped' WHERE node_id = 'conv-01'")
        registry.register(30_000)
        registry.stopped()
        assert.equal(registry.nodes()[0]?.state, 'stopped')
      })
    })
  }
})
