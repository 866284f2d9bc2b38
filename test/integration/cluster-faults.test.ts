import assert from 'node:assert/strict'
import {existsSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ClusterHarness, type StoreJob} from '../helpers/cluster-harness.js'
import {checkConvertedOnce, checkNothingLate, logLines, succeededInLog} from '../helpers/cluster-checks.js'
import type {NodeSettings} from '../helpers/cluster-node.js'
import {usePgCluster} from '../helpers/pg-cluster.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {dropDisks, makeSlowDisks, makeTinyDisks, type TinyDisk} from '../helpers/tiny-disks.js'

const NODES = ['node-a', 'node-b', 'node-c']

/**
 * Faults in a three-node cluster, each injected while a conversion runs (a disk of incompressible data,
 * compressed: seconds of work, its `.part` output already written): a node killed with SIGKILL, the
 * PostgreSQL server stopped and started again, one node cut off from the server (its TCP proxy resetting or
 * silently dropping). In the end every disk is converted exactly once, and nothing changes afterwards.
 * The default test settings (heartbeat 0.5 s, lease 4 s, statement_timeout 0.3 s) keep the fencing rule
 * lease_ttl >= 3 x heartbeat_interval + statement_timeout (a node fences after 4 - 2 x 0.5 - 0.3 = 2.7 s
 * without a renewal, before anyone may take its jobs).
 */
describe('cluster faults: kill -9, PostgreSQL restart, a partitioned node', function () {
  this.timeout(420_000)
  const pg = usePgCluster()
  let temp: ReturnType<typeof makeTempDir>
  let harness: ClusterHarness | undefined
  let slowIndex = 0
  before(() => {
    temp = makeTempDir('h2k-cluster-faults-')
  })
  afterEach(async () => {
    await harness?.destroy()
    harness = undefined
  })
  after(() => temp.cleanup())

  /** Three nodes started, 3 slow and 24 tiny disks dropped; resolves with a slow job that is converting now. */
  async function scenario(name: string, options: {proxied?: boolean; settings?: Partial<NodeSettings>} = {}): Promise<{h: ClusterHarness; disks: TinyDisk[]; inFlight: StoreJob}> {
    const h = await ClusterHarness.create({dir: join(temp.dir, name), nodes: NODES, pg: pg(), proxied: options.proxied ?? false, settings: {extra: ['compress: true'], ...options.settings}})
    harness = h
    const slow = await makeSlowDisks(join(temp.dir, 'slow'), 3, {first: slowIndex})
    slowIndex += 3
    const tiny = await makeTinyDisks(join(temp.dir, name, 'disks'), 24, {qcow2Every: 6})
    await h.startAll()
    dropDisks(slow, h.dropDir)
    dropDisks(tiny, h.dropDir)
    const inFlight = await h.waitFor('a slow disk converting (leased, its .part written)', async () => {
      const running = (await h.jobs()).filter((j) => j.status === 'running' && j.source_path.startsWith('slow-') && j.leased_by !== null)
      return running.find((j) => existsSync(j.output_path) && readdirSync(j.output_path).some((n) => n.endsWith('.part')))
    }, 120_000, 50)
    return {disks: [...slow, ...tiny], h, inFlight}
  }

  const succeededJob = (h: ClusterHarness, id: string) => async () => (await h.jobs()).find((j) => j.id === id && j.status === 'succeeded')
  const runs = async (h: ClusterHarness, id: string): Promise<string[]> => (await h.history()).filter((r) => r.job_id === id).map((r) => r.to_status)

  it('kill -9 of a node during a conversion: after its lease expires another node takes the job over once and completes it; the killed node restarts and rejoins', async () => {
    const {disks, h, inFlight} = await scenario('kill')
    const victim = h.node(inFlight.leased_by!)
    const survivors = h.nodes.filter((n) => n !== victim)
    const killedAt = Date.now()
    await victim.kill9()

    await h.waitFor(`${inFlight.source_path} completed elsewhere`, succeededJob(h, inFlight.id), 180_000)
    // The row is committed a moment before its node logs it: the line is waited for, not assumed.
    await h.waitFor(`a surviving node logged ${inFlight.id} succeeded`, async () => survivors.find((n) => succeededInLog(n.log()).includes(inFlight.id)), 15_000)
    const takeOvers = survivors.flatMap((n) => logLines(n.log(), 'job:taken-over').filter((l) => l.line.includes(`job=${inFlight.id}`)).map((l) => ({...l, node: n.id})))
    assert.equal(takeOvers.length, 1, `taken over exactly once:\n${takeOvers.map((l) => l.line).join('\n')}`)
    assert.match(takeOvers[0]!.line, new RegExp(`lost_by=${victim.id}\\b`))
    // The lease was renewed at most a heartbeat before the kill: nobody may take it before it could have expired.
    const earliest = killedAt + (h.settings.leaseTtl - h.settings.heartbeatInterval) * 1000 - 250
    assert.ok(takeOvers[0]!.at >= earliest, `taken over ${killedAt - takeOvers[0]!.at} ms before the lease could have expired`)
    const steps = await runs(h, inFlight.id)
    assert.equal(steps.filter((s) => s === 'queued').length, 2, `re-queued exactly once: ${steps.join(' > ')}`)
    assert.equal(steps.filter((s) => s === 'succeeded').length, 1, steps.join(' > '))
    const details = (await h.history()).filter((r) => r.job_id === inFlight.id).map((r) => r.detail ?? '')
    assert.ok(details.some((d) => d.includes(victim.id) && d.includes(takeOvers[0]!.node)), `the history names who lost and who took over: ${details.join(' | ')}`)

    await victim.start()
    await h.waitSucceeded(disks.length, 300_000)
    const outcome = await checkConvertedOnce(h, disks, {compare: 'all', oneRun: false})
    assert.ok(!outcome.perNode.get(victim.id)!.includes(inFlight.id))
    await h.waitFor(`${victim.id} alive again in cluster_nodes`, async () => (await h.query<{node_id: string}>(`SELECT node_id FROM cluster_nodes WHERE node_id = '${victim.id}' AND heartbeat_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 3000`)).length === 1, 30_000)
    await checkNothingLate(h, outcome, h.settings.leaseTtl * 1000 + 2000)
  })

  it('PostgreSQL stopped for 3 s and started again during conversions: the daemons reconnect, running conversions continue and are recorded once the store is back; nothing lost or run twice', async () => {
    // A lease of 12 s (fencing after 12 - 2 - 0.3 = 9.7 s): an outage of a few seconds is ridden out, not fenced.
    const {disks, h, inFlight} = await scenario('pg-restart', {settings: {heartbeatInterval: 1, leaseTtl: 12}})
    const stoppedAt = Date.now()
    await pg().stopServer()
    await sleep(3000)
    await pg().startServer()
    const outageMs = Date.now() - stoppedAt

    await h.waitSucceeded(disks.length, 300_000)
    for (const node of h.nodes) {
      assert.ok(node.running, `${node.id} survived the outage\n${node.tail()}`)
      const outage = logLines(node.log(), 'store:unavailable', 'store:available').filter((l) => l.at >= stoppedAt - 1000)
      assert.deepEqual(outage.map((l) => l.event).slice(0, 2), ['store:unavailable', 'store:available'], `${node.id} saw the outage (${outageMs} ms) and reconnected\n${node.tail()}`)
      assert.deepEqual(logLines(node.log(), 'cluster:fenced').map((l) => l.line), [], `${node.id} did not fence for a ${outageMs} ms outage`)
    }
    assert.deepEqual(await runs(h, inFlight.id), ['queued', 'running', 'succeeded'], `${inFlight.source_path}, converting during the outage, ran once`)
    const outcome = await checkConvertedOnce(h, disks, {compare: 'all', oneRun: true})
    await checkNothingLate(h, outcome, 3000)
  })

  for (const mode of ['reset', 'blackhole'] as const) {
    it(`a node partitioned from PostgreSQL (${mode}): it fences and stops claiming, commits nothing for its lost leases, the others take its jobs over; after the heal it rejoins and every disk is converted once`, async () => {
      const {disks, h, inFlight} = await scenario(`partition-${mode}`, {proxied: true})
      const victim = h.node(inFlight.leased_by!)
      const survivors = h.nodes.filter((n) => n !== victim)
      const severedAt = Date.now()
      victim.proxy!.sever(mode)

      // Fenced now: its latest fence event is a fence (after the cut; on a loaded machine a slow store may have fenced it just before, and it cannot unfence while cut off).
      await h.waitFor(`${victim.id} fenced`, async () => logLines(victim.log(), 'cluster:fenced', 'cluster:unfenced').at(-1)?.event === 'cluster:fenced', 60_000)
      await h.waitFor(`${inFlight.source_path} completed by another node`, succeededJob(h, inFlight.id), 180_000)
      // The row is committed a moment before its node logs it: the line is waited for, not assumed.
      await h.waitFor(`a connected node logged ${inFlight.id} succeeded`, async () => survivors.find((n) => succeededInLog(n.log()).includes(inFlight.id)), 15_000)
      const takeOver = survivors.flatMap((n) => logLines(n.log(), 'job:taken-over').filter((l) => l.line.includes(`job=${inFlight.id}`)))
      assert.equal(takeOver.length, 1)
      assert.match(takeOver[0]!.line, new RegExp(`lost_by=${victim.id}\\b`))
      // Stay partitioned a while longer: a node that would still commit or claim would have done so by now.
      await sleep(h.settings.leaseTtl * 1000)
      assert.ok(victim.running, `${victim.id} keeps running while cut off\n${victim.tail()}`)
      const healedAt = Date.now()
      victim.proxy!.heal()

      // Cut off, it claimed nothing and started nothing (a statement bound after the cut for one in flight).
      const during = logLines(victim.log(), 'file:claimed', 'job:start', 'job:succeeded').filter((l) => l.at > severedAt + 1000 && l.at < healedAt)
      assert.deepEqual(during.map((l) => l.line), [], `${victim.id} claimed or finished nothing while partitioned`)
      assert.ok(logLines(victim.log(), 'job:lease-lost').some((l) => l.line.includes(`job=${inFlight.id}`)), `${victim.id} abandoned ${inFlight.id} (H2K_LEASE_LOST)\n${victim.tail()}`)

      await h.waitFor(`${victim.id} rejoined (unfenced, heart-beating)`, async () => {
        const unfenced = logLines(victim.log(), 'cluster:unfenced').some((l) => l.at >= healedAt - 500)
        const alive = await h.query<{node_id: string}>(`SELECT node_id FROM cluster_nodes WHERE node_id = '${victim.id}' AND heartbeat_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 2000`)
        return unfenced && alive.length === 1
      }, 60_000)
      await h.waitSucceeded(disks.length, 300_000)
      const outcome = await checkConvertedOnce(h, disks, {compare: 'all', oneRun: false})
      assert.ok(!outcome.perNode.get(victim.id)!.includes(inFlight.id), `${victim.id} never recorded the job it lost`)
      await checkNothingLate(h, outcome, h.settings.leaseTtl * 1000 + 2000)
    })
  }
})
