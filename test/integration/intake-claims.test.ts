import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {IntakeClaims} from '../../src/daemon/intake-claims.js'
import {JobStore} from '../../src/daemon/store.js'
import type {StoreTarget} from '../../src/store/store-target.js'
import {usePgCluster} from '../helpers/pg-cluster.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const run = promisify(execFile)

/** One racer process (test/helpers/claim-racer.ts): the paths it won. */
async function racer(target: StoreTarget, node: string, count: number, at: number): Promise<string[]> {
  const {stdout} = await run(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../helpers/claim-racer.ts'), node, String(count)], {
    env: {...process.env, H2K_TEST_AT: String(at), H2K_TEST_STORE: JSON.stringify(target)},
    timeout: 90_000,
  })
  return JSON.parse(stdout) as string[]
}

describe('intake claim rows: one node wins each dropped file (SQLite and PostgreSQL)', function () {
  this.timeout(120_000)
  const pg = usePgCluster()
  let temp: ReturnType<typeof makeTempDir>
  let opened: JobStore[] = []
  before(() => (temp = makeTempDir('h2k-claims-')))
  after(() => temp.cleanup())
  afterEach(() => {
    for (const store of opened.splice(0)) store.close()
  })

  const engines: Array<{name: string; fresh: () => Promise<StoreTarget>}> = [
    {fresh: async () => ({sqlitePath: join(temp.dir, `${randomUUID()}.db`)}), name: 'sqlite'},
    {fresh: async () => ({postgres: pg().settings(await pg().createDatabase()), sqlitePath: join(temp.dir, 'never-used.db')}), name: 'postgres'},
  ]

  for (const engine of engines) {
    describe(engine.name, () => {
      function open(target: StoreTarget): JobStore {
        const store = JobStore.open(target)
        opened.push(store)
        return store
      }

      /** A cluster_nodes row as the heartbeat writes one, `ageMs` old on the store's clock. */
      function heartbeat(store: JobStore, node: string, ageMs: number, state = 'running'): void {
        const at = Date.now() - ageMs
        store.sql.run('INSERT INTO cluster_nodes (node_id, hostname, pid, started_at, heartbeat_at, state) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, state = excluded.state', [node, 'host', 1, at, at, state])
      }

      it('two processes racing for the same 150 files: each file is won by exactly one of them', async () => {
        const target = await engine.fresh()
        open(target).close()
        opened = []
        const at = Date.now() + 3000
        const [a, b] = await Promise.all([racer(target, 'node-a', 150, at), racer(target, 'node-b', 150, at)])
        const both = a.filter((path) => b.includes(path))
        assert.deepEqual(both, [], 'no file won twice')
        assert.equal(new Set([...a, ...b]).size, 150, 'every file won once')
        const store = open(target)
        const rows = store.sql.all<{path: string; node_id: string; claim_id: string}>('SELECT path, node_id, claim_id FROM intake_claims')
        assert.equal(rows.length, 150)
        for (const row of rows) assert.ok(row.claim_id.startsWith(`${row.node_id}-`), `the row of ${row.path} is its winner's`)
      })

      it('a live node keeps its claim; a dead node\'s unrenamed file and a settled file are taken over once', async () => {
        const target = await engine.fresh()
        const store = open(target)
        const a = new IntakeClaims(store.sql, 'node-a', () => 30_000)
        const b = new IntakeClaims(store.sql, 'node-b', () => 30_000)
        const c = new IntakeClaims(store.sql, 'node-c', () => 30_000)
        heartbeat(store, 'node-a', 0)
        assert.equal(a.claim('x.raw', 'id1', 'aaaa0001'), true)
        assert.equal(b.claim('x.raw', 'id1', 'bbbb0001'), false, 'the row is there: node-b moves on')
        // The owner meeting its own unsettled row for a file still in the inbox: that claim never moved it (a
        // rename that failed, a COMMIT lost with the connection, a release the store refused): it claims it afresh.
        assert.equal(a.claim('x.raw', 'id1', 'aaaa0002'), true, 'the owner takes its own stale row over')
        assert.equal(store.sql.get<{claim_id: string}>('SELECT claim_id FROM intake_claims WHERE path = ? AND identity = ?', ['x.raw', 'id1'])?.claim_id, 'aaaa0002')
        assert.equal(b.claim('x.raw', 'id1', 'bbbb0006'), false, 'still node-a\'s for everyone else')
        assert.equal(b.claim('x.raw', 'id2', 'bbbb0002'), true, 'another identity of the same name is another file')
        // node-a goes silent for longer than lease_ttl: its claim that never left the inbox is taken, once.
        heartbeat(store, 'node-a', 60_000)
        heartbeat(store, 'node-b', 0)
        assert.equal(b.claim('x.raw', 'id1', 'bbbb0003'), true)
        assert.equal(c.claim('x.raw', 'id1', 'cccc0003'), false, 'node-b is alive: its takeover stands')
        assert.equal(store.sql.get<{node_id: string}>('SELECT node_id FROM intake_claims WHERE path = ? AND identity = ?', ['x.raw', 'id1'])?.node_id, 'node-b')
        // A settled claim's file dropped again (moved back from processed/, same inode and mtime) is claimed again.
        b.settled('bbbb0003')
        heartbeat(store, 'node-c', 0)
        assert.equal(c.claim('x.raw', 'id1', 'cccc0004'), true)
        assert.equal(b.claim('x.raw', 'id1', 'bbbb0004'), false)
        // A node that stopped cleanly is gone at once.
        heartbeat(store, 'node-c', 0, 'stopped')
        assert.equal(b.claim('x.raw', 'id1', 'bbbb0005'), true, 'node-c stopped with the file still in the inbox: taken over')
      })

      it('recovery: a claim directory is this node\'s, a dead node\'s (adopted exactly once), or a live node\'s (left alone)', async () => {
        const target = await engine.fresh()
        const store = open(target)
        const a = new IntakeClaims(store.sql, 'node-a', () => 30_000)
        const b = new IntakeClaims(store.sql, 'node-b', () => 30_000)
        const c = new IntakeClaims(store.sql, 'node-c', () => 30_000)
        heartbeat(store, 'node-a', 0)
        heartbeat(store, 'node-b', 0)
        heartbeat(store, 'node-c', 0)
        assert.ok(a.claim('one.raw', 'i1', 'c0000001'))
        assert.equal(a.ownership('c0000001', 'one.raw', 'i1'), 'mine')
        assert.equal(b.ownership('c0000001', 'one.raw', 'i1'), 'live-owner')
        heartbeat(store, 'node-a', 45_000)
        assert.equal(b.ownership('c0000001', 'one.raw', 'i1'), 'adopted')
        assert.equal(c.ownership('c0000001', 'one.raw', 'i1'), 'live-owner', 'adopted once: node-b (alive) owns it now')
        assert.equal(b.ownership('c0000001', 'one.raw', 'i1'), 'mine')
        // A directory without a row (made before claim rows existed): the first node to ask inserts one.
        assert.equal(c.ownership('c0000002', 'old.raw', 'unrecorded:c0000002'), 'adopted')
        assert.equal(b.ownership('c0000002', 'old.raw', 'unrecorded:c0000002'), 'live-owner')
        // Settling: one node takes it; the same node again (a resumed settle) may; a dead settler's is taken over.
        assert.equal(c.takeForSettling('c0000001'), true, 'nobody settles it yet: whoever ran its last job takes it')
        assert.equal(b.takeForSettling('c0000001'), false)
        assert.equal(c.takeForSettling('c0000001'), true)
        heartbeat(store, 'node-c', 45_000)
        assert.equal(b.takeForSettling('c0000001'), true)
        b.settled('c0000001')
        assert.equal(b.takeForSettling('c0000001'), false, 'a settled claim is not settled again')
        // At start, this node's rows without a directory are closed (the file may be claimed again).
        assert.ok(b.claim('two.raw', 'i2', 'c0000003'))
        assert.equal(b.closeMissing(new Set(['c0000002'])), 1)
        assert.notEqual(b.row('c0000003')?.settled_at, null)
        assert.equal(b.idFree('c0000003'), false)
        assert.equal(b.idFree('c0000009'), true)
      })

      it('pruning: settled rows after the keep time, never-settled rows of long-silent nodes; bounded', async () => {
        const target = await engine.fresh()
        const store = open(target)
        const a = new IntakeClaims(store.sql, 'node-a', () => 30_000)
        const b = new IntakeClaims(store.sql, 'node-b', () => 30_000)
        heartbeat(store, 'node-a', 0)
        for (let i = 0; i < 5; i++) assert.ok(a.claim(`s${i}.raw`, 'i', `s000000${i}`))
        for (let i = 0; i < 5; i++) a.settled(`s000000${i}`)
        assert.ok(a.claim('open.raw', 'i', 'o0000001'))
        store.sql.run('UPDATE intake_claims SET settled_at = settled_at - 100000, claimed_at = claimed_at - 100000')
        assert.equal(b.prune(50_000, 3), 3, 'at most `limit` rows a call')
        assert.equal(b.prune(50_000), 2)
        assert.equal(b.prune(50_000), 0, 'node-a is alive: its unsettled claim stays')
        heartbeat(store, 'node-a', 200_000)
        assert.equal(b.prune(50_000), 1)
        assert.deepEqual(store.sql.all('SELECT * FROM intake_claims'), [])
      })
    })
  }
})
