import assert from 'node:assert/strict'
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import type {ClusterHarness, StoreHistory, StoreJob} from './cluster-harness.js'
import {convertedIntact, type TinyDisk} from './tiny-disks.js'

/** What a finished cluster run looked like, for the test's own further assertions. */
export interface ClusterOutcome {
  jobs: StoreJob[]
  history: Map<string, StoreHistory[]>
  /** Jobs each node logged as succeeded (its log's job:succeeded lines). */
  perNode: Map<string, string[]>
}

/** The job ids a node's log (all its runs) names in job:succeeded lines. */
export function succeededInLog(log: string): string[] {
  return [...log.matchAll(/\bjob:succeeded\b[^\n]*?\bjob=([A-Za-z0-9_-]+)/g)].map((m) => m[1]!)
}

/**
 * Every disk converted exactly once, by the store and by the files:
 * - one job per disk (no disk claimed twice, no job without a disk), every one succeeded;
 * - a job's history has exactly one `succeeded`, as its last transition (no `running` after success), and
 *   (`oneRun`) exactly one `running` when no fault could have interrupted a run;
 * - each job's output directory is named after its disk (a second claim of one name would get `<name>-<id>`)
 *   and holds exactly the output and its report (no `.part`, nothing else), and no other directory exists
 *   beside them;
 * - the outputs equal their disk's expected content (`qemu-img compare`, all or a sample of `compare`);
 * - the nodes' logs name each job in exactly one job:succeeded line overall, and the per-node counts add
 *   up to the total;
 * - nothing left in the drop directory, `.processing/` empty, every disk archived once in `.processed/`.
 */
export async function checkConvertedOnce(harness: ClusterHarness, disks: readonly TinyDisk[], options: {oneRun: boolean; compare?: number | 'all'}): Promise<ClusterOutcome> {
  const jobs = await harness.jobs()
  const byName = new Map(disks.map((d) => [d.name, d]))
  const sources = jobs.map((j) => j.source_path).sort()
  assert.deepEqual(sources, disks.map((d) => d.name).sort(), 'exactly one job per dropped disk')
  const notDone = jobs.filter((j) => j.status !== 'succeeded')
  assert.deepEqual(notDone.map((j) => `${j.source_path}: ${j.status}`), [], 'every job succeeded')

  const history = new Map<string, StoreHistory[]>()
  for (const row of await harness.history()) history.set(row.job_id, [...(history.get(row.job_id) ?? []), row])
  const badHistories: string[] = []
  for (const job of jobs) {
    const steps = (history.get(job.id) ?? []).map((h) => h.to_status)
    const succeeded = steps.filter((s) => s === 'succeeded').length
    const runs = steps.filter((s) => s === 'running').length
    if (succeeded !== 1 || steps.at(-1) !== 'succeeded' || steps[0] !== 'queued' || runs < 1 || (options.oneRun && runs !== 1)) badHistories.push(`${job.source_path}: ${steps.join(' > ')}`)
  }
  assert.deepEqual(badHistories, [], `histories: one success, last${options.oneRun ? ', after exactly one run' : ''}`)

  const badOutputs: string[] = []
  const dayDirs = new Set<string>()
  for (const job of jobs) {
    const disk = byName.get(job.source_path)!
    dayDirs.add(join(job.output_path, '..'))
    if (!job.output_path.endsWith(`/${disk.stem}`)) badOutputs.push(`${disk.name}: output directory ${job.output_path}`)
    const entries = existsSync(job.output_path) ? readdirSync(job.output_path).sort() : ['<missing>']
    if (entries.join(',') !== [`${disk.stem}.qcow2`, `${disk.stem}.report.json`].join(',')) badOutputs.push(`${disk.name}: ${entries.join(',')}`)
  }
  assert.deepEqual(badOutputs, [], 'one output directory per disk, holding its output and report only')
  const outputDirs = [...dayDirs].flatMap((day) => readdirSync(day).map((name) => join(day, name))).sort()
  assert.deepEqual(outputDirs, jobs.map((j) => j.output_path).sort(), 'no output directory beyond one per job')

  const sample = options.compare === 'all' || options.compare === undefined ? jobs : spread(jobs, options.compare)
  const differing: string[] = []
  for (let at = 0; at < sample.length; at += 2) {
    await Promise.all(sample.slice(at, at + 2).map(async (job) => {
      const disk = byName.get(job.source_path)!
      if (!(await convertedIntact(disk, join(job.output_path, `${disk.stem}.qcow2`)))) differing.push(disk.name)
    }))
  }
  assert.deepEqual(differing, [], `outputs equal to their disks (${sample.length} compared)`)

  const perNode = new Map<string, string[]>()
  const seen = new Map<string, string>()
  const twice: string[] = []
  for (const node of harness.nodes) {
    const ids = succeededInLog(node.log())
    perNode.set(node.id, ids)
    for (const id of ids) {
      if (seen.has(id)) twice.push(`${id}: ${seen.get(id)} and ${node.id}`)
      seen.set(id, node.id)
    }
  }
  assert.deepEqual(twice, [], 'no job logged as succeeded twice (by one node or two)')
  assert.deepEqual([...seen.keys()].sort(), jobs.map((j) => j.id).sort(), 'the per-node counts add up to the jobs in the store')

  await settledDropDir(harness, disks)
  return {history, jobs, perNode}
}

/** Wait (a claim settles a moment after its job) until the drop directory holds nothing but bookkeeping, then check the archive. */
async function settledDropDir(harness: ClusterHarness, disks: readonly TinyDisk[]): Promise<void> {
  const drop = harness.dropDir
  const processing = join(drop, '.processing')
  const archived = (): string[] => {
    const root = join(drop, '.processed')
    if (!existsSync(root)) return []
    return readdirSync(root).flatMap((day) => readdirSync(join(root, day)))
  }
  await harness.waitFor('every claim settled', async () => {
    const left = readdirSync(drop).filter((n) => !n.startsWith('.'))
    const inFlight = existsSync(processing) ? readdirSync(processing) : []
    return left.length === 0 && inFlight.length === 0 && archived().length >= disks.length ? true : undefined
  }, 60_000, 250)
  assert.deepEqual(archived().sort(), disks.map((d) => d.name).sort(), 'every disk archived exactly once')
}

/** `count` items spread evenly over `items` (first and last included). */
function spread<T>(items: readonly T[], count: number): T[] {
  if (count >= items.length) return [...items]
  return Array.from({length: count}, (_, i) => items[Math.round((i * (items.length - 1)) / Math.max(1, count - 1))]!)
}

/** Every output file's identity (inode, size, mtime), to show later that nothing rewrote one. */
export function outputFingerprints(jobs: readonly StoreJob[]): Map<string, string> {
  const prints = new Map<string, string>()
  for (const job of jobs) {
    for (const name of readdirSync(job.output_path)) {
      const stat = statSync(join(job.output_path, name), {bigint: true})
      prints.set(join(job.output_path, name), `${stat.ino}:${stat.size}:${stat.mtimeNs}`)
    }
  }
  return prints
}

/**
 * After a run settled: wait `ms` (longer than a lease, so a fenced or late node would have acted by then)
 * and check that no output changed, no job or history row was added, and every job is still succeeded.
 */
export async function checkNothingLate(harness: ClusterHarness, outcome: ClusterOutcome, ms: number): Promise<void> {
  const before = outputFingerprints(outcome.jobs)
  const historyRows = [...outcome.history.values()].reduce((n, rows) => n + rows.length, 0)
  await sleep(ms)
  assert.deepEqual(outputFingerprints(outcome.jobs), before, 'no output was written again after the run settled')
  const jobs = await harness.jobs()
  assert.equal(jobs.length, outcome.jobs.length, 'no job added after the run settled')
  assert.deepEqual(jobs.filter((j) => j.status !== 'succeeded').map((j) => j.source_path), [], 'every job still succeeded')
  assert.equal((await harness.history()).length, historyRows, 'no history row added after the run settled')
}

/** One line of a node's text log: its time (ms epoch), event and the whole line. */
export interface LogLine {
  at: number
  event: string
  line: string
}

/** The lines of `log` whose event is one of `events` (every line when none is given). */
export function logLines(log: string, ...events: string[]): LogLine[] {
  const lines: LogLine[] = []
  for (const line of log.split('\n')) {
    const match = /^(\S+) [A-Z]+ (\S+)/.exec(line)
    if (!match) continue
    const at = Date.parse(match[1]!)
    if (Number.isNaN(at) || (events.length > 0 && !events.includes(match[2]!))) continue
    lines.push({at, event: match[2]!, line})
  }
  return lines
}
