import assert from 'node:assert/strict'
import {join} from 'node:path'

import {ClusterHarness} from '../helpers/cluster-harness.js'
import {checkConvertedOnce} from '../helpers/cluster-checks.js'
import {usePgCluster} from '../helpers/pg-cluster.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {dropDisks, makeTinyDisks} from '../helpers/tiny-disks.js'

/**
 * Three conversion hosts on one queue: three daemon processes with their own state_dir and work dir share
 * one drop directory (standing in for the shared export store), one output_dir and one PostgreSQL store.
 */
describe('cluster: three daemons, one PostgreSQL store, one drop directory', function () {
  this.timeout(600_000)
  const pg = usePgCluster()
  let temp: ReturnType<typeof makeTempDir>
  let harness: ClusterHarness | undefined
  before(() => {
    temp = makeTempDir('h2k-cluster-')
  })
  afterEach(async () => {
    await harness?.destroy()
    harness = undefined
  })
  after(() => temp.cleanup())

  it('300 tiny disks dropped at once: every one converted exactly once (store history and output files agree), each node did some, the per-node counts add up', async () => {
    harness = await ClusterHarness.create({dir: join(temp.dir, 'three'), nodes: ['node-a', 'node-b', 'node-c'], pg: pg()})
    const disks = await makeTinyDisks(join(temp.dir, 'three', 'disks'), 300, {qcow2Every: 10})
    await harness.startAll()
    const status = await runCli(['ctl', 'status', '--config', harness.node('node-a').configPath, '--json'], {env: {HYPER2KVM_STORE_PASSWORD: ''}})
    assert.equal(status.code, 0, status.stderr)

    dropDisks(disks, harness.dropDir)
    await harness.waitSucceeded(disks.length, 420_000)
    const outcome = await checkConvertedOnce(harness, disks, {compare: 'all', oneRun: true})

    const counts = Object.fromEntries([...outcome.perNode].map(([node, ids]) => [node, ids.length]))
    for (const node of harness.nodes) assert.ok(outcome.perNode.get(node.id)!.length > 0, `${node.id} converted some of the disks: ${JSON.stringify(counts)}`)
    assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), disks.length)

    // The operator's view agrees: ctl jobs lists the cluster's jobs, ctl stats counts them, ctl status lists the three nodes.
    const env = {HYPER2KVM_STORE_PASSWORD: ''}
    const listed = await runCli(['ctl', 'jobs', '--config', harness.node('node-b').configPath, '--status', 'succeeded', '--limit', '1000', '--json'], {env})
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(listed.json.jobs.length, disks.length)
    const stats = await runCli(['ctl', 'stats', '--config', harness.node('node-c').configPath, '--json'], {env})
    assert.equal(stats.code, 0, stats.stderr)
    assert.equal(stats.json.cluster.totals.total_processed, disks.length)
    const cluster = await runCli(['ctl', 'status', '--config', harness.node('node-c').configPath, '--json'], {env})
    assert.equal(cluster.code, 0, cluster.stderr)
    assert.deepEqual(cluster.json.cluster.nodes.map((n: {node_id: string; alive: boolean}) => `${n.node_id}:${n.alive}`).sort(), ['node-a:true', 'node-b:true', 'node-c:true'])

    for (const node of harness.nodes) assert.equal(await node.stop(), 0, `${node.id} stops cleanly\n${node.tail()}`)
    for (const node of harness.nodes) assert.ok(!node.log().includes(pg().password), `${node.id} never logs the store password`)
  })
})
