import assert from 'node:assert/strict'
import {copyFileSync, mkdirSync, readdirSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {JobStore} from '../../src/daemon/store.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {usePgCluster} from '../helpers/pg-cluster.js'
import {runCli} from '../helpers/run-cli.js'

/**
 * Two daemons (separate processes, separate state_dirs, node ids node-a and node-b) sharing one drop
 * directory, one output_dir and one PostgreSQL store: intake claim rows make each dropped file one node's,
 * `ctl … --all` reaches both through the store, and the dedup keys are shared.
 */
describe('cluster intake: two daemons on one drop directory and one PostgreSQL store', function () {
  this.timeout(240_000)
  const pg = usePgCluster()
  const suite = daemonSuite('h2k-cluster-intake-', {killAfter: 'all'})
  let inbox: string
  let database: string
  const configs: Record<string, string> = {}
  const daemons: Record<string, RunningDaemon> = {}
  let store: JobStore
  const env = (): NodeJS.ProcessEnv => ({HYPER2KVM_STORE_PASSWORD: pg().password})
  const ctl = async (args: string[]) => runCli(['ctl', ...args, '--json'], {env: env()})

  /** A small raw disk of its own content (the dedup key is a hash: no two files alike), dropped by an atomic rename. */
  function drop(name: string, pattern: number): string {
    const staged = join(suite.dir, `staged-${name}`)
    makePatternedRaw(staged, 256 * 1024, [{length: 4096, offset: 0, pattern}])
    const copy = join(suite.dir, `keep-${name}`)
    copyFileSync(staged, copy)
    renameSync(staged, join(inbox, name))
    return copy
  }

  async function start(node: string): Promise<RunningDaemon> {
    const daemon = await startDaemon(['--config', configs[node]!], join(suite.dir, node), undefined, {env: env()})
    suite.daemons.push(daemon)
    daemons[node] = daemon
    return daemon
  }

  async function stateOf(node: string): Promise<string> {
    const status = await ctl(['status', '--config', configs[node]!])
    assert.equal(status.code, 0, status.stderr)
    return String(status.json.state)
  }

  before(async () => {
    database = await pg().createDatabase()
    inbox = join(suite.dir, 'in')
    mkdirSync(inbox)
    for (const node of ['node-a', 'node-b']) {
      configs[node] = join(suite.dir, `${node}.yaml`)
      const lines = [`watch_dir: ${inbox}`, `output_dir: ${join(suite.dir, 'out')}`, `state_dir: ${join(suite.dir, node, '.daemon')}`, `node_id: ${node}`, 'heartbeat_interval: 1', 'lease_ttl: 15', 'enable_deduplication: true', 'store:', `  url: postgres://h2k@127.0.0.1:${pg().port}/${database}`, '  connect_timeout: 5', '']
      writeFileSync(configs[node]!, lines.join('\n'))
    }
    await start('node-a')
    await start('node-b')
    store = JobStore.open({postgres: pg().settings(database), sqlitePath: join(suite.dir, 'unused.db')}, {readonly: true})
  })
  after(() => store?.close())

  it('20 files dropped at once: each claimed by exactly one node (one claim row, one job), all converted, the inbox and processing/ empty', async () => {
    const names = Array.from({length: 20}, (_, i) => `disk-${String(i).padStart(2, '0')}.raw`)
    for (const [i, name] of names.entries()) drop(name, i + 1)
    await until('all 20 converted', () => names.every((name) => store.jobs({}).some((j) => j.source_path === name && j.status === 'succeeded')), 180_000)
    const claims = store.sql.all<{path: string; node_id: string; settled_at: number | null}>('SELECT path, node_id, settled_at FROM intake_claims ORDER BY path')
    assert.deepEqual(claims.map((c) => c.path), names, 'one claim row per file')
    await until('every claim settled', () => store.sql.all<{n: number}>('SELECT COUNT(*) AS n FROM intake_claims WHERE settled_at IS NULL')[0]!.n === 0 || undefined, 30_000)
    const jobs = store.jobs({})
    assert.equal(jobs.length, 20, 'one job per file: no file planned twice')
    assert.deepEqual([...new Set(jobs.map((j) => j.source_path))].sort(), names)
    assert.deepEqual(readdirSync(inbox).filter((n) => !n.startsWith('.')), [], 'nothing left in the drop directory')
    await until('processing/ empty', () => readdirSync(join(inbox, '.processing')).length === 0 || undefined, 30_000)
    const byNode = new Map<string, number>()
    for (const c of claims) byNode.set(c.node_id, (byNode.get(c.node_id) ?? 0) + 1)
    assert.ok([...byNode.keys()].every((n) => n === 'node-a' || n === 'node-b'), JSON.stringify([...byNode]))
    for (const name of ['node-a', 'node-b']) assert.doesNotMatch(daemons[name]!.log(), /file:claim-failed|file:settle-failed|intake:error/)
  })

  it('ctl status|stats|jobs --json with the PostgreSQL --config list both nodes, alive, and the cluster totals', async () => {
    const status = await ctl(['status', '--config', configs['node-a']!])
    assert.equal(status.code, 0, status.stderr)
    const nodes = status.json.cluster.nodes as Array<{node_id: string; alive: boolean; state: string; heartbeat_age_seconds: number}>
    assert.deepEqual(nodes.map((n) => n.node_id), ['node-a', 'node-b'])
    assert.ok(nodes.every((n) => n.alive && n.state === 'running' && n.heartbeat_age_seconds < 15), JSON.stringify(nodes))
    assert.equal(status.json.cluster.totals.total_processed, 20)
    const stats = await ctl(['stats', '--config', configs['node-b']!])
    assert.equal(stats.code, 0, stats.stderr)
    assert.equal(stats.json.cluster.totals.total_processed, 20, 'summed over the cluster, whichever node ran them')
    const jobs = await ctl(['jobs', '--config', configs['node-b']!])
    assert.equal(jobs.code, 0, jobs.stderr)
    assert.equal(jobs.json.cluster.nodes.length, 2)
    const humane = await runCli(['ctl', 'status', '--config', configs['node-a']!], {env: env()})
    assert.match(humane.stdout, /Cluster: 2 of 2 node\(s\) alive; processed 20/)
    assert.match(humane.stdout, /node-b\s+\S+\s+RUNNING/)
  })

  it('pause --all pauses both (nothing new is claimed), resume --all resumes both; a node restarted after a command is not paused again by replay', async () => {
    const paused = await ctl(['pause', '--all', '--config', configs['node-a']!])
    assert.equal(paused.code, 0, paused.stderr)
    assert.deepEqual(paused.json.acked, ['node-a', 'node-b'], JSON.stringify(paused.json))
    assert.deepEqual(paused.json.pending, [])
    assert.equal(await stateOf('node-a'), 'PAUSED')
    assert.equal(await stateOf('node-b'), 'PAUSED')
    drop('while-paused.raw', 101)
    // Many intake ticks (100 ms) and heartbeats: a paused node of a shared store claims nothing.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    assert.deepEqual(readdirSync(inbox).filter((n) => !n.startsWith('.')), ['while-paused.raw'])
    assert.equal(store.sql.all('SELECT * FROM intake_claims WHERE path = ?', ['while-paused.raw']).length, 0)
    const view = await ctl(['status', '--config', configs['node-a']!])
    assert.ok(view.json.cluster.nodes.every((n: {state: string}) => n.state === 'paused'), JSON.stringify(view.json.cluster.nodes))

    // node-b stops cleanly and starts again: the pause was issued before its start, and is not replayed.
    assert.equal((await ctl(['stop', '--config', configs['node-b']!])).code, 0)
    await daemons['node-b']!.exited
    await start('node-b')
    assert.equal(await stateOf('node-b'), 'RUNNING', 'a command older than the daemon is not applied')
    assert.equal(await stateOf('node-a'), 'PAUSED')
    await until('node-b claims and converts the file', () => store.jobs({}).find((j) => j.source_path === 'while-paused.raw' && j.status === 'succeeded'), 60_000)

    const resumed = await ctl(['resume', '--all', '--config', configs['node-b']!])
    assert.equal(resumed.code, 0, resumed.stderr)
    assert.deepEqual(resumed.json.acked, ['node-a', 'node-b'])
    assert.equal(await stateOf('node-a'), 'RUNNING')
    assert.equal(await stateOf('node-b'), 'RUNNING')
  })

  it('dedup keys are shared: a file node-a converted, dropped again while only node-b claims, is caught as a duplicate by node-b', async () => {
    // node-b paused (its socket): node-a alone claims and converts the original.
    assert.equal((await ctl(['pause', '--config', configs['node-b']!])).code, 0)
    const original = drop('shared.raw', 202)
    const first = await until('node-a converted shared.raw', () => store.jobs({}).find((j) => j.source_path === 'shared.raw' && j.status === 'succeeded'), 60_000)
    assert.equal(store.sql.get<{node_id: string}>('SELECT node_id FROM intake_claims WHERE path = ?', ['shared.raw'])?.node_id, 'node-a')
    // Now node-a paused, node-b running: the same content dropped again goes to node-b, which finds it in the shared keys.
    assert.equal((await ctl(['pause', '--config', configs['node-a']!])).code, 0)
    assert.equal((await ctl(['resume', '--config', configs['node-b']!])).code, 0)
    await until('node-a settled its claim', () => store.sql.get<{s: number | null}>('SELECT settled_at AS s FROM intake_claims WHERE path = ?', ['shared.raw'])?.s != null || undefined, 30_000)
    renameSync(original, join(inbox, 'shared.raw'))
    const duplicate = await until('node-b caught the duplicate', () => store.jobs({}).find((j) => j.source_path === 'shared.raw' && j.status === 'duplicate'), 60_000)
    assert.match(String(store.historyOf(duplicate.id)[0]?.detail), new RegExp(`duplicate of job ${first.id}`))
    const rows = store.sql.all<{node_id: string}>('SELECT node_id FROM intake_claims WHERE path = ? ORDER BY claimed_at', ['shared.raw'])
    assert.ok(rows.some((r) => r.node_id === 'node-b'), JSON.stringify(rows))
    assert.equal((await ctl(['resume', '--config', configs['node-a']!])).code, 0)
  })

  it('recovery at start leaves a live node\'s claim in progress alone, and adopts it once that node is gone', async () => {
    // A claim of node-a between its rename and its planning: its row, its directory, its file.
    const writer = JobStore.open({postgres: pg().settings(database), sqlitePath: join(suite.dir, 'unused.db')})
    try {
      const dir = join(inbox, '.processing', 'feed0001')
      mkdirSync(dir)
      makePatternedRaw(join(dir, 'orphan.raw'), 256 * 1024, [{length: 4096, offset: 0, pattern: 0x33}])
      writeFileSync(join(dir, '.claim.json'), JSON.stringify({claimed_at: new Date().toISOString(), files: ['orphan.raw'], id: 'feed0001', identity: 'by-hand', kind: 'disk', main: 'orphan.raw'}))
      writer.sql.run("INSERT INTO intake_claims (path, identity, claim_id, node_id, claimed_at) VALUES ('orphan.raw', 'by-hand', 'feed0001', 'node-a', 0)")
    } finally {
      writer.close()
    }
    const restartB = async (): Promise<RunningDaemon> => {
      assert.equal((await ctl(['stop', '--config', configs['node-b']!])).code, 0)
      await daemons['node-b']!.exited
      return start('node-b')
    }
    await restartB()
    await new Promise((resolve) => setTimeout(resolve, 2000))
    assert.deepEqual(store.jobsOfIntake('feed0001'), [], 'node-a is alive: node-b did not plan its claim')
    assert.deepEqual(readdirSync(join(inbox, '.processing', 'feed0001')).sort(), ['.claim.json', 'orphan.raw'], 'nor put it back or settled it')
    assert.equal(store.sql.get<{node_id: string}>("SELECT node_id FROM intake_claims WHERE claim_id = 'feed0001'")?.node_id, 'node-a')
    // node-a stops (its row says stopped): node-b's next start adopts the claim, once, and converts it.
    assert.equal((await ctl(['stop', '--config', configs['node-a']!])).code, 0)
    await daemons['node-a']!.exited
    const b = await restartB()
    await until('node-b converted the adopted claim', () => store.jobsOfIntake('feed0001').find((j) => j.status === 'succeeded'), 60_000, b)
    assert.equal(store.jobsOfIntake('feed0001').length, 1)
    assert.equal(store.sql.get<{node_id: string}>("SELECT node_id FROM intake_claims WHERE claim_id = 'feed0001'")?.node_id, 'node-b')
    assert.match(b.log(), /claim:adopted.*feed0001/)
  })

  it('the store connection lost while a claim is planned, then while it is settled: both done once the store answers, without a restart', async () => {
    // A real failover in the middle of a write: until disarmed, the server ends the connection of whoever
    // inserts a job, or takes a claim for settling (the trigger runs as the daemon's role, on its own backend).
    await pg().psql(
      `CREATE TABLE fault_armed (tbl text PRIMARY KEY);
       GRANT SELECT ON fault_armed TO h2k;
       CREATE FUNCTION fault_cut() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM fault_armed WHERE tbl = TG_TABLE_NAME) THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER fault_jobs BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION fault_cut();
       CREATE TRIGGER fault_settle BEFORE UPDATE OF settling_at ON intake_claims FOR EACH ROW EXECUTE FUNCTION fault_cut();
       INSERT INTO fault_armed VALUES ('jobs')`,
      database,
    )
    try {
      const b = daemons['node-b']!
      // node-a stopped in the last case: node-b alone claims.
      drop('cut.raw', 0x44)
      const claimed = await until('node-b claimed cut.raw and could not plan it', () => /file:plan-deferred file=cut\.raw intake=(\w+)/.exec(b.log())?.[1], 30_000, b)
      assert.deepEqual(store.jobsOfIntake(claimed), [], 'no job recorded while the connection is cut')
      assert.equal(store.sql.get<{node_id: string}>('SELECT node_id FROM intake_claims WHERE claim_id = ?', [claimed])?.node_id, 'node-b')
      await pg().psql("DELETE FROM fault_armed; INSERT INTO fault_armed VALUES ('intake_claims')", database)
      const job = await until('planned again and converted', () => store.jobsOfIntake(claimed).find((j) => j.status === 'succeeded'), 60_000, b)
      await until('settling cut off', () => new RegExp(`file:settle-deferred intake=${claimed}`).test(b.log()) || undefined, 30_000, b)
      assert.deepEqual(readdirSync(join(inbox, '.processing', claimed)).sort(), ['.claim.json', 'cut.raw'], 'the claim waits in processing/')
      await pg().psql('DELETE FROM fault_armed', database)
      await until('settled: the claim row says so', () => store.sql.get<{s: number | null}>('SELECT settled_at AS s FROM intake_claims WHERE claim_id = ?', [claimed])?.s != null || undefined, 30_000, b)
      await until('processing/ empty', () => !readdirSync(join(inbox, '.processing')).includes(claimed) || undefined, 30_000, b)
      assert.equal(store.jobsOfIntake(claimed).length, 1, 'planned once')
      assert.deepEqual(store.historyOf(job.id).map((h) => h.to_status), ['queued', 'running', 'succeeded'])
      assert.equal(b.log().match(/daemon:start/g)?.length, 1, 'no restart needed')
      assert.doesNotMatch(b.log(), /file:plan-failed|file:settle-failed/)
    } finally {
      await pg().psql('DROP TRIGGER fault_jobs ON jobs; DROP TRIGGER fault_settle ON intake_claims; DROP FUNCTION fault_cut(); DROP TABLE fault_armed', database)
    }
  })

  it('--all with a SQLite store is refused (H2K_USAGE): one daemon, reached on its socket', async () => {
    const config = join(suite.dir, 'sqlite.yaml')
    writeFileSync(config, [`watch_dir: ${join(suite.dir, 'sqlite-in')}`, `output_dir: ${join(suite.dir, 'sqlite-out')}`, ''].join('\n'))
    const refused = await runCli(['ctl', 'pause', '--all', '--config', config, '--json'])
    assert.equal(refused.code, 2, refused.stderr)
    assert.match(refused.stdout + refused.stderr, /H2K_USAGE[\s\S]*without --all/)
  })
})
