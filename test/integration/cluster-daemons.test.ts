import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {JobStore} from '../../src/daemon/store.js'
import {type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {runCli} from '../helpers/run-cli.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {usePgCluster} from '../helpers/pg-cluster.js'
import {TcpProxy} from '../helpers/tcp-proxy.js'

/**
 * Two daemons (separate processes, separate state_dirs) on one PostgreSQL store sharing one drop directory
 * and one output_dir: every job runs exactly once, and a node killed with kill -9 mid-job loses its lease,
 * the other takes the job over and completes it once.
 */
describe('several daemons on one PostgreSQL store: leased dispatch, take-over after kill -9', function () {
  this.timeout(300_000)
  const suite = daemonSuite('h2k-cluster-')
  const pg = usePgCluster()
  const opened: JobStore[] = []
  afterEach(() => {
    for (const store of opened.splice(0)) store.close()
  })

  /** A shared drop directory and output_dir, a fresh database, and the configuration of node `name`. */
  async function cluster(name: string, extra: string[] = [], portOf: (node: string) => number = () => pg().port, connectTimeout: (node: string) => number = () => 5) {
    const base = join(suite.dir, name)
    const [inbox, out] = [join(base, 'drop'), join(base, 'out')]
    mkdirSync(inbox, {recursive: true})
    const database = await pg().createDatabase()
    const configOf = (node: string): {config: string; state: string} => {
      const state = join(base, `state-${node}`)
      const config = join(base, `${node}.yaml`)
      const lines = [`watch_dir: ${inbox}`, `output_dir: ${out}`, `state_dir: ${state}`, 'max_concurrent_jobs: 2', 'heartbeat_interval: 1', 'lease_ttl: 10', ...extra, 'store:', `  url: postgres://h2k@127.0.0.1:${portOf(node)}/${database}`, `  connect_timeout: ${connectTimeout(node)}`]
      writeFileSync(config, `${lines.join('\n')}\n`)
      return {config, state}
    }
    const start = async (node: string): Promise<RunningDaemon & {state: string}> => {
      const {config, state} = configOf(node)
      const daemon = await startDaemon(['--config', config], out, undefined, {env: {HYPER2KVM_STORE_PASSWORD: pg().password}, socket: join(state, 'control.sock')})
      suite.daemons.push(daemon)
      return {...daemon, state}
    }
    const store = JobStore.open({postgres: pg().settings(database), sqlitePath: join(base, 'unused.db')}, {readonly: true})
    opened.push(store)
    const ctl = (node: string, command: string) => runCli(['ctl', command, '--json', '--config', configOf(node).config])
    return {base, ctl, inbox, out, start, store}
  }

  const nodeIdOf = (state: string): string => readFileSync(join(state, 'node_id'), 'utf8').trim()

  it('20 disks dropped on a shared directory with 2 daemons: each converted exactly once, by one of them', async () => {
    const {base, inbox, start, store} = await cluster('twenty')
    const a = await start('a')
    const b = await start('b')
    const nodes = [nodeIdOf(a.state), nodeIdOf(b.state)]
    assert.notEqual(nodes[0], nodes[1], 'each daemon has its own node id, kept in its state_dir')
    const sources = join(base, 'sources')
    mkdirSync(sources)
    const disks: Array<{name: string; raw: string; format: string}> = []
    for (let i = 0; i < 20; i++) {
      const raw = makePatternedRaw(join(sources, `d${i}.expected.raw`), 1024 * 1024, [
        {length: 4096, offset: 0, pattern: 0x10 + i},
        {length: 512, offset: 1024 * 1024 - 512, pattern: 0x80 + i},
      ])
      const format = i % 2 === 0 ? 'raw' : 'qcow2'
      const name = `disk${String(i).padStart(2, '0')}.${format}`
      if (format === 'raw') execFileSync('cp', [raw, join(sources, name)])
      else convertFixture(raw, join(sources, name), 'qcow2')
      disks.push({format, name, raw})
    }
    for (const disk of disks) renameSync(join(sources, disk.name), join(inbox, disk.name))
    const done = await until('20 jobs succeeded', () => {
      const rows = store.jobs({})
      return rows.length >= 20 && rows.every((r) => r.status === 'succeeded') ? rows : undefined
    }, 180_000, a)
    assert.equal(done.length, 20, 'one job per disk: no file was claimed twice')
    assert.deepEqual(new Set(done.map((r) => r.source_path)), new Set(disks.map((d) => d.name)))
    const perNode = new Map<string, number>()
    for (const job of done) {
      const history = store.historyOf(job.id)
      assert.deepEqual(history.map((h) => h.to_status), ['queued', 'running', 'succeeded'], `${job.source_path} ran once`)
      const node = /on node (\S+)$/.exec(history[1]!.detail ?? '')?.[1]
      assert.ok(node !== undefined && nodes.includes(node), `the claim names its node: ${history[1]!.detail}`)
      perNode.set(node, (perNode.get(node) ?? 0) + 1)
      assert.equal(job.leased_by, null, 'a finished job holds no lease')
      assert.deepEqual(store.attemptsOf(job.id).map((t) => t.outcome), ['succeeded'])
      const disk = disks.find((d) => d.name === job.source_path)!
      const stem = disk.name.replace(/\.(raw|qcow2)$/, '')
      const outputs = readdirSync(job.output_path)
      assert.deepEqual(outputs.filter((n) => !n.endsWith('.report.json')), [`${stem}.qcow2`], `${disk.name}: one output, no .part left`)
      assert.ok(sameContent(join(job.output_path, `${stem}.qcow2`), 'qcow2', disk.raw, 'raw'), `${disk.name}: the output holds the input`)
    }
    assert.equal([...perNode.values()].reduce((x, y) => x + y, 0), 20)
    assert.equal(perNode.size, 2, `both nodes ran jobs: ${JSON.stringify([...perNode])}`)
    assert.equal(store.processedFiles().length, 20, 'dedup records: one per disk')
    // Both nodes are registered and heart-beating; a clean stop says stopped.
    const registered = store.sql.all<{node_id: string; state: string}>('SELECT node_id, state FROM cluster_nodes ORDER BY node_id')
    assert.deepEqual(registered.map((r) => r.node_id).sort(), [...nodes].sort())
    a.child.kill('SIGTERM')
    assert.equal(await a.exited, 0)
    assert.equal(store.sql.get<{state: string}>('SELECT state FROM cluster_nodes WHERE node_id = ?', [nodes[0]!])?.state, 'stopped')
    assert.ok(!a.log().includes(pg().password))
  })

  it('kill -9 of the node running a job: after lease_ttl the other node takes it over, clears its partial output and completes it once', async () => {
    const {base, inbox, start, store} = await cluster('kill', ['compress: true'])
    const daemons = [await start('a'), await start('b')]
    const ids = daemons.map((d) => nodeIdOf(d.state))
    // Incompressible data and zstd compression: a conversion long enough to be killed in.
    const big = join(base, 'big.raw')
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=384', 'status=none'])
    const expected = join(base, 'big.expected.raw')
    execFileSync('cp', [big, expected])
    renameSync(big, join(inbox, 'big.raw'))
    const running = await until('big running', () => store.jobs({}).find((j) => j.status === 'running'), 60_000, daemons[0], 20)
    await until('a .part output', () => existsSync(running.output_path) && readdirSync(running.output_path).some((n) => n.endsWith('.part')), 60_000, daemons[0], 10)
    const holder = ids.indexOf(store.job(running.id)!.leased_by ?? '')
    assert.ok(holder >= 0, 'the running job is leased by one of the nodes')
    const [victim, survivor] = [daemons[holder]!, daemons[1 - holder]!]
    const [nodeA, nodeB] = [ids[holder]!, ids[1 - holder]!]
    victim.child.kill('SIGKILL')
    await victim.exited
    assert.equal(store.job(running.id)!.status, 'running', 'killed mid-job')
    const b = survivor
    const done = await until('big done on b', () => store.jobs({}).find((j) => j.status === 'succeeded'), 150_000, b)
    assert.equal(done.id, running.id)
    assert.equal(store.jobs({}).length, 1)
    const history = store.historyOf(done.id)
    assert.deepEqual(history.map((h) => h.to_status), ['queued', 'running', 'queued', 'running', 'succeeded'], 'completed once after one take-over')
    assert.match(history[1]!.detail!, new RegExp(`on node ${nodeA}$`))
    assert.match(history[2]!.detail!, new RegExp(`lease of node ${nodeA} expired: taken over and re-queued by node ${nodeB}, partial outputs removed`))
    assert.match(history[3]!.detail!, new RegExp(`on node ${nodeB}$`))
    assert.deepEqual(store.attemptsOf(done.id).map((t) => t.outcome), ['lease-lost', 'succeeded'])
    assert.deepEqual(readdirSync(done.output_path).sort(), ['big.qcow2', 'big.report.json'])
    assert.ok(sameContent(join(done.output_path, 'big.qcow2'), 'qcow2', expected, 'raw'), 'the output holds the input')
    assert.match(b.log(), /WARN job:taken-over file=big\.raw/)
    assert.equal(store.processedFiles().length, 1)
  })

  it('SQLite: a second daemon on the same output_dir is refused whatever its state_dir; ctl reaches the first through either', async () => {
    const base = join(suite.dir, 'sqlite')
    const [inbox, out] = [join(base, 'drop'), join(base, 'out')]
    mkdirSync(inbox, {recursive: true})
    const configOf = (node: string): string => {
      const config = join(base, `${node}.yaml`)
      writeFileSync(config, `watch_dir: ${inbox}\noutput_dir: ${out}\nstate_dir: ${join(base, `state-${node}`)}\n`)
      return config
    }
    const first = await startDaemon(['--config', configOf('a')], out, undefined, {socket: join(base, 'state-a', 'control.sock')})
    suite.daemons.push(first)
    assert.ok(existsSync(join(base, 'state-a', 'jobs.db')), 'the SQLite store is in state_dir')
    const second = await runCli(['daemon', '--config', configOf('b')])
    assert.equal(second.code, 12, second.stderr)
    assert.match(second.stderr, /H2K_DAEMON_RUNNING/)
    for (const args of [['--config', configOf('a')], ['--output-dir', out]]) {
      const status = await runCli(['ctl', 'status', '--json', ...args])
      assert.equal(status.code, 0, status.stderr)
      assert.equal((JSON.parse(status.stdout) as {pid: number}).pid, first.child.pid)
    }
    first.child.kill('SIGTERM')
    assert.equal(await first.exited, 0)
    assert.ok(!existsSync(join(base, 'state-a', 'control.sock')) && !existsSync(join(out, '.daemon', 'control.sock')), 'both sockets removed at a clean stop')
  })

  it('a node cut off from the store fences itself: aborts its job, writes nothing for it, claims nothing; the other completes the job once; healed, it rejoins', async () => {
    const proxy = await TcpProxy.start({host: '127.0.0.1', port: pg().port})
    try {
      const {base, ctl, inbox, start, store} = await cluster('partition', ['compress: true'], (node) => (node === 'a' ? proxy.port : pg().port), (node) => (node === 'a' ? 1 : 5))
      const a = await start('a')
      const b = await start('b')
      // b takes no job until a runs this one.
      assert.equal((await ctl('b', 'pause')).code, 0)
      const big = join(base, 'big.raw')
      execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=384', 'status=none'])
      const expected = join(base, 'big.expected.raw')
      execFileSync('cp', [big, expected])
      renameSync(big, join(inbox, 'big.raw'))
      const running = await until('big running on a', () => store.jobs({}).find((j) => j.status === 'running'), 60_000, a, 20)
      await until('a .part output', () => existsSync(running.output_path) && readdirSync(running.output_path).some((n) => n.endsWith('.part')), 60_000, a, 10)
      const [nodeA, nodeB] = [nodeIdOf(a.state), nodeIdOf(b.state)]
      assert.equal(store.job(running.id)!.leased_by, nodeA)
      proxy.sever('reset')
      assert.equal((await ctl('b', 'resume')).code, 0)
      await until('a fenced itself', () => /cluster:fenced/.test(a.log()), 60_000, a)
      await until('a abandoned the job', () => /job:lease-lost .*file=big\.raw/.test(a.log()), 30_000, a)
      assert.match(a.log(), /store:unavailable/)
      const done = await until('big done on b', () => store.jobs({}).find((j) => j.status === 'succeeded'), 150_000, b)
      const history = store.historyOf(done.id)
      assert.deepEqual(history.map((h) => h.to_status), ['queued', 'running', 'queued', 'running', 'succeeded'], 'nothing of a\'s attempt after its lease was lost')
      assert.match(history[2]!.detail!, new RegExp(`lease of node ${nodeA} expired: taken over and re-queued by node ${nodeB}`))
      assert.match(history[3]!.detail!, new RegExp(`on node ${nodeB}$`))
      assert.deepEqual(store.attemptsOf(done.id).map((t) => t.outcome), ['lease-lost', 'succeeded'])
      assert.ok(sameContent(join(done.output_path, 'big.qcow2'), 'qcow2', expected, 'raw'), 'the output holds the input')
      assert.equal(a.child.exitCode, null, 'the outage never crashed a')
      proxy.heal()
      await until('a back', () => /cluster:unfenced/.test(a.log()) && /store:available/.test(a.log()), 60_000, a)
      assert.equal(store.historyOf(done.id).length, 5, 'a wrote nothing once back')
      a.child.kill('SIGTERM')
      assert.equal(await a.exited, 0)
    } finally {
      await proxy.close()
    }
  })
})
