import assert from 'node:assert/strict'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {JobLeases} from '../../src/cluster/job-leases.js'
import type {ClaimPlanner} from '../../src/daemon/claim-planner.js'
import {IntakeClaims} from '../../src/daemon/intake-claims.js'
import {layoutOf} from '../../src/daemon/layout.js'
import {recoverClaims} from '../../src/daemon/recover-claims.js'
import type {ClaimSettler} from '../../src/daemon/settle-claim.js'
import {JobStore} from '../../src/daemon/store.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('recovery at start re-queues only its own running jobs and expired ones, never a live node\'s', () => {
  let temp: ReturnType<typeof makeTempDir>
  let store: JobStore
  beforeEach(() => {
    temp = makeTempDir('h2k-recover-leases-')
    store = JobStore.open({sqlitePath: join(temp.dir, 'jobs.db')})
  })
  afterEach(() => {
    store.close()
    temp.cleanup()
  })

  it('own (same node id), expired and lease-less running jobs are re-queued with their outputs removed; a live node\'s job and output stay', async () => {
    const layout = layoutOf('watch', join(temp.dir, 'drop'))
    mkdirSync(layout.processing, {recursive: true})
    const leaseOf = (node: string, ttlMs: number) => new JobLeases(store, node, () => ttlMs)
    const jobs = {expired: 'node-c', legacy: undefined, live: 'node-b', own: 'node-a'} as const
    for (const [id, node] of Object.entries(jobs)) {
      const output = join(temp.dir, 'out', id)
      store.insertJob({definition_json: '{}', id, name: id, output_path: output, source_path: `${id}.raw`, vm_path: `/in/${id}.raw`})
      if (node === undefined) store.transition(id, 'running', 'a build without leases')
      else assert.ok(leaseOf(node, id === 'expired' ? 1 : 60_000).claim(id, () => 'attempt'))
      store.startAttempt(id)
      mkdirSync(output, {recursive: true})
      writeFileSync(join(output, `${id}.qcow2.part`), 'partial')
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
    const logged: string[] = []
    // Only the first loop runs here: the processing directory holds no claim, so the planner and settler are not asked.
    await recoverClaims({claims: new IntakeClaims(store.sql, 'node-a', () => 60_000), layout, leases: leaseOf('node-a', 60_000), log: (_level, event, fields) => void logged.push(`${event} ${String(fields?.job)}`), planner: undefined as unknown as ClaimPlanner, safe: (real) => real, settler: undefined as unknown as ClaimSettler, store})
    for (const id of ['own', 'expired', 'legacy']) {
      const row = store.job(id)!
      assert.equal(row.status, 'queued', id)
      assert.equal(row.leased_by, null)
      assert.equal(existsSync(join(temp.dir, 'out', id)), false, `${id}: partial output removed`)
      assert.deepEqual(store.attemptsOf(id).map((a) => a.outcome), [id === 'expired' ? 'lease-lost' : 'interrupted'])
      assert.ok(logged.includes(`job:recovered ${id}`))
    }
    assert.match(store.historyOf('expired').at(-1)!.detail!, /lease of node node-c expired: taken over and re-queued by node node-a at its start/)
    assert.match(store.historyOf('own').at(-1)!.detail!, /recovered after an unclean stop/)
    const live = store.job('live')!
    assert.equal(live.status, 'running')
    assert.equal(live.leased_by, 'node-b')
    assert.ok(existsSync(join(temp.dir, 'out', 'live', 'live.qcow2.part')), 'a live node\'s output is untouched')
    assert.deepEqual(store.attemptsOf('live').map((a) => a.outcome), [null])
  })
})
