#!/usr/bin/env node
// bench/cluster: what sharing one PostgreSQL store costs. Two measurements in one run, on tiny data disks
// (1 MiB raw, no OS: a conversion is a few qemu-img calls, so the store's share of a job is as large as it
// gets):
// (a) per-job overhead of the PostgreSQL store vs SQLite on ONE node: the same burst of H2K_BENCH_DISKS
//     disks (60) dropped at once into one daemon (max_concurrent_jobs 2), once per engine, alternated over
//     H2K_BENCH_RUNS rounds (2); per engine the median over rounds of the mean job time (completed_at -
//     started_at from the store) and of the burst's wall time. Prints the ratio PostgreSQL / SQLite (goal
//     <= 1.5x).
// (b) 1 vs 3 nodes on one PostgreSQL store: disks dropped one every H2K_BENCH_GAP_MS (300) ms, slower than
//     the nodes convert them, so a job never waits for a free worker; the claim/dispatch latency of each job
//     is started_at - created_at (queued -> running, both written by the store's users): p50 and p95. On a
//     2-core machine the conversions cannot scale, so throughput is not what this reports.
// The PostgreSQL server is a throwaway cluster (test/helpers/pg-cluster.ts, loaded through tsx): root and
// the Debian postgresql package are needed, as for the tests. Exits non-zero only when a job failed or a
// run did not finish (a missed goal prints GOAL MISSED). Work files live under $H2K_BENCH_CACHE
// (default .cache/bench), removed at the end unless H2K_BENCH_KEEP=1.
import {spawn} from 'node:child_process'
import {closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync, writeSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import Database from 'better-sqlite3'
import {tsImport} from 'tsx/esm/api'

const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
const cache = resolve(process.env.H2K_BENCH_CACHE ?? join(root, '.cache/bench'))
const runs = Number(process.env.H2K_BENCH_RUNS ?? 2)
const burst = Number(process.env.H2K_BENCH_DISKS ?? 60)
const trickle = Number(process.env.H2K_BENCH_TRICKLE ?? 40)
const gapMs = Number(process.env.H2K_BENCH_GAP_MS ?? 300)
const keep = process.env.H2K_BENCH_KEEP === '1'
const GOAL_RATIO = 1.5
const SIZE = 1024 * 1024
const cli = join(root, 'bin/run.js')
const {PgCluster} = await tsImport('../test/helpers/pg-cluster.ts', import.meta.url)

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length
const pct = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))]
const ms = (value) => `${Math.round(value)} ms`

mkdirSync(cache, {recursive: true})
const work = mkdtempSync(join(cache, 'cluster-'))
const pg = await PgCluster.start()
let failures = 0
let diskSerial = 0

/** A tiny sparse raw disk with a few patterned regions, unique per serial number. */
function tinyDisk(dir) {
  const n = diskSerial++
  const path = join(dir, `tiny-${String(n).padStart(5, '0')}.raw`)
  const fd = openSync(path, 'w')
  ftruncateSync(fd, SIZE)
  for (const [offset, byte] of [[0, 1 + (n % 250)], [65536, 1 + Math.floor(n / 250)], [SIZE - 4096, 0x5a]]) writeSync(fd, Buffer.alloc(4096, byte), 0, 4096, offset)
  closeSync(fd)
  return path
}

/** One daemon process of a run; resolves once it logged daemon:start. */
async function startNode(config) {
  const child = spawn(process.execPath, [cli, 'daemon', '--config', config, '--stability-interval', '100'], {env: {...process.env, HYPER2KVM_STORE_PASSWORD: '', NO_COLOR: '1'}, stdio: ['ignore', 'ignore', 'pipe']})
  let log = ''
  child.stderr.on('data', (chunk) => (log += chunk))
  const exited = new Promise((resolve) => child.on('exit', resolve))
  for (let i = 0; i < 1200 && !log.includes('daemon:start'); i++) {
    if (child.exitCode !== null) break
    await sleep(50)
  }
  if (!log.includes('daemon:start')) throw new Error(`daemon did not start:\n${log}`)
  return {child, exited, log: () => log}
}

/** A run's directories and one configuration per node; `database`: a PostgreSQL database, else SQLite. */
function layout(name, nodes, database) {
  const dir = join(work, name)
  const drop = join(dir, 'drop')
  const out = join(dir, 'out')
  const staged = join(dir, 'staged')
  for (const d of [drop, out, staged]) mkdirSync(d, {recursive: true})
  writeFileSync(join(dir, 'password'), `${pg.password}\n`, {mode: 0o600})
  const configs = Array.from({length: nodes}, (_, i) => {
    const node = `node-${i + 1}`
    const config = join(dir, `${node}.yaml`)
    const store = database === undefined ? [] : ['store:', `  url: postgres://${pg.role}@127.0.0.1:${pg.port}/${database}`, `  password_file: ${join(dir, 'password')}`]
    writeFileSync(config, ['command: daemon', `watch_dir: ${drop}`, `output_dir: ${out}`, `state_dir: ${join(dir, node)}`, `node_id: ${node}`, 'max_concurrent_jobs: 2', ...store, ''].join('\n'))
    return config
  })
  return {configs, dir, drop, out, staged}
}

/** The jobs of a run with their times in ms: created, started, completed. */
async function jobTimes(run, database) {
  const query = 'SELECT status, created_at, started_at, completed_at FROM jobs'
  let rows
  if (database === undefined) {
    const db = new Database(join(run.dir, 'node-1', 'jobs.db'), {readonly: true})
    try {
      rows = db.prepare(query).all()
    } finally {
      db.close()
    }
  } else {
    rows = JSON.parse(await pg.psql(`SELECT coalesce(json_agg(t), '[]'::json) FROM (${query}) t`, database))
  }
  return rows.map((r) => ({completed: r.completed_at ? Date.parse(r.completed_at) : NaN, created: Date.parse(r.created_at), started: r.started_at ? Date.parse(r.started_at) : NaN, status: r.status}))
}

/** Wait until `count` jobs finished; counts failures. */
async function finished(run, database, count, timeoutMs = 600_000) {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    let jobs = []
    try {
      jobs = await jobTimes(run, database)
    } catch {
      // SQLite: the store may not exist yet.
    }
    const done = jobs.filter((j) => ['succeeded', 'failed', 'dead'].includes(j.status))
    if (done.length >= count) {
      const bad = done.filter((j) => j.status !== 'succeeded').length
      if (bad > 0) {
        failures += bad
        console.log(`FAILED: ${bad} job(s) did not succeed`)
      }
      return jobs
    }
    await sleep(250)
  }
  failures++
  throw new Error(`run ${run.dir}: ${count} jobs did not finish in ${timeoutMs} ms`)
}

async function stopAll(nodes) {
  for (const node of nodes) node.child.kill('SIGTERM')
  await Promise.all(nodes.map((n) => n.exited))
}

// ---- (a) one node: PostgreSQL vs SQLite ------------------------------------------------------------
async function burstRun(engine, round) {
  const database = engine === 'postgres' ? await pg.createDatabase() : undefined
  const run = layout(`burst-${engine}-${round}`, 1, database)
  const disks = Array.from({length: burst}, () => tinyDisk(run.staged))
  const nodes = [await startNode(run.configs[0])]
  const dropped = Date.now()
  for (const disk of disks) renameSync(disk, join(run.drop, disk.slice(run.staged.length + 1)))
  const jobs = await finished(run, database, burst)
  await stopAll(nodes)
  const wall = Math.max(...jobs.map((j) => j.completed)) - dropped
  return {jobMs: mean(jobs.map((j) => j.completed - j.started)), wall}
}

console.log(`bench/cluster: (a) ${burst} tiny disks, one daemon, PostgreSQL vs SQLite, ${runs} round(s) alternated`)
const results = {postgres: [], sqlite: []}
for (let round = 0; round < runs; round++) {
  for (const engine of round % 2 === 0 ? ['sqlite', 'postgres'] : ['postgres', 'sqlite']) {
    const r = await burstRun(engine, round)
    results[engine].push(r)
    console.log(`  round ${round + 1} ${engine.padEnd(8)} per job ${ms(r.jobMs)}  burst wall ${ms(r.wall)}`)
  }
}
const perJob = {postgres: median(results.postgres.map((r) => r.jobMs)), sqlite: median(results.sqlite.map((r) => r.jobMs))}
const wall = {postgres: median(results.postgres.map((r) => r.wall)), sqlite: median(results.sqlite.map((r) => r.wall))}
const ratio = perJob.postgres / perJob.sqlite
const wallRatio = wall.postgres / wall.sqlite
console.log(`  per job: SQLite ${ms(perJob.sqlite)}, PostgreSQL ${ms(perJob.postgres)}: ratio ${ratio.toFixed(2)}x (goal <= ${GOAL_RATIO}x: ${ratio <= GOAL_RATIO ? 'met' : 'GOAL MISSED'})`)
console.log(`  burst wall: SQLite ${ms(wall.sqlite)}, PostgreSQL ${ms(wall.postgres)}: ratio ${wallRatio.toFixed(2)}x`)

// ---- (b) 1 vs 3 nodes: claim/dispatch latency --------------------------------------------------------
async function trickleRun(nodeCount) {
  const database = await pg.createDatabase()
  const run = layout(`trickle-${nodeCount}`, nodeCount, database)
  const disks = Array.from({length: trickle}, () => tinyDisk(run.staged))
  const nodes = []
  for (const config of run.configs) nodes.push(await startNode(config))
  for (const disk of disks) {
    renameSync(disk, join(run.drop, disk.slice(run.staged.length + 1)))
    await sleep(gapMs)
  }
  const jobs = await finished(run, database, trickle)
  await stopAll(nodes)
  const latency = jobs.map((j) => j.started - j.created)
  return {p50: pct(latency, 50), p95: pct(latency, 95)}
}

console.log(`bench/cluster: (b) ${trickle} tiny disks dropped one every ${gapMs} ms, one PostgreSQL store: claim/dispatch latency (queued -> running)`)
const latency = {}
for (const count of [1, 3]) {
  latency[count] = await trickleRun(count)
  console.log(`  ${count} node(s): p50 ${ms(latency[count].p50)}, p95 ${ms(latency[count].p95)}`)
}
console.log(`  3 nodes / 1 node: p50 ${(latency[3].p50 / Math.max(1, latency[1].p50)).toFixed(2)}x, p95 ${(latency[3].p95 / Math.max(1, latency[1].p95)).toFixed(2)}x`)
console.log(JSON.stringify({bench: 'cluster', burst, dispatch: latency, per_job_ms: perJob, ratio: Number(ratio.toFixed(3)), runs, trickle, wall_ms: wall, wall_ratio: Number(wallRatio.toFixed(3))}))

await pg.stop()
if (!keep) rmSync(work, {force: true, recursive: true})
process.exit(failures > 0 ? 1 : 0)
