import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ClusterNode, type NodeSettings} from './cluster-node.js'
import type {PgCluster} from './pg-cluster.js'
import {TcpProxy} from './tcp-proxy.js'
import type {HistoryRow} from '../../src/daemon/job-row.js'

/** A job row as the store holds it (the columns the cluster checks read). */
export interface StoreJob {
  id: string
  name: string
  source_path: string
  status: string
  attempts: number
  output_path: string
  created_at: string
  started_at: string | null
  completed_at: string | null
  leased_by: string | null
  lease_until: number | null
}

/** A job_history row as the store holds it. */
export type StoreHistory = HistoryRow

export interface ClusterOptions {
  /** The test file's PostgreSQL cluster (usePgCluster()); the harness makes its own database in it. */
  pg: PgCluster
  /** A directory of the test's own: the harness puts the drop dir, output_dir and one directory per node in it. */
  dir: string
  /** Node names (node_id), in order. */
  nodes: readonly string[]
  /** Every node reaches PostgreSQL through a TcpProxy of its own (to partition it); default direct. */
  proxied?: boolean
  settings?: Partial<NodeSettings>
}

/** Settings for a test cluster: short enough for a test, long enough for a loaded 2-core machine. */
export const TEST_NODE_SETTINGS: NodeSettings = {connectTimeout: 2, heartbeatInterval: 0.5, leaseTtl: 4, maxConcurrentJobs: 2, statementTimeout: 0.3}

/**
 * N daemons sharing one drop directory, one output_dir and one PostgreSQL database (a new one in the test
 * file's throwaway cluster), each a separate process with its own state_dir, work dir and log, optionally
 * behind its own TCP proxy to the server. The test looks at the store from outside, as an operator would:
 * through psql as the cluster's superuser, never through the code under test.
 */
export class ClusterHarness {
  readonly dropDir: string
  readonly outputDir: string
  readonly nodes: ClusterNode[]

  private constructor(
    readonly pg: PgCluster,
    readonly database: string,
    readonly dir: string,
    nodes: ClusterNode[],
    readonly settings: NodeSettings,
  ) {
    this.dropDir = join(dir, 'drop')
    this.outputDir = join(dir, 'out')
    this.nodes = nodes
  }

  /** Make the database, the directories, the proxies and every node's configuration; starts no daemon. */
  static async create(options: ClusterOptions): Promise<ClusterHarness> {
    const settings = {...TEST_NODE_SETTINGS, ...options.settings}
    if (settings.leaseTtl < 3 * settings.heartbeatInterval + settings.statementTimeout) {
      throw new Error(`test cluster settings break the fencing rule lease_ttl >= 3 x heartbeat_interval + statement_timeout: ${JSON.stringify(settings)}`)
    }
    const database = await options.pg.createDatabase()
    const dropDir = join(options.dir, 'drop')
    const outputDir = join(options.dir, 'out')
    mkdirSync(dropDir, {recursive: true})
    mkdirSync(outputDir, {recursive: true})
    const passwordFile = join(options.dir, 'store-password')
    writeFileSync(passwordFile, `${options.pg.password}\n`, {mode: 0o600})
    const nodes: ClusterNode[] = []
    for (const id of options.nodes) {
      const proxy = options.proxied ? await TcpProxy.start({host: '127.0.0.1', port: options.pg.port}) : undefined
      const port = proxy?.port ?? options.pg.port
      const dir = join(options.dir, 'nodes', id)
      mkdirSync(dir, {recursive: true})
      nodes.push(new ClusterNode({dir, dropDir, id, outputDir, passwordFile, storeUrl: `postgres://${options.pg.role}@127.0.0.1:${port}/${database}`, ...(proxy ? {proxy} : {})}, settings))
    }
    return new ClusterHarness(options.pg, database, options.dir, nodes, settings)
  }

  node(id: string): ClusterNode {
    const found = this.nodes.find((n) => n.id === id)
    if (!found) throw new Error(`no node ${id}`)
    return found
  }

  /** Start every node (one after another: each waits for its daemon:start). */
  async startAll(): Promise<void> {
    for (const node of this.nodes) await node.start()
  }

  /** kill -9 whatever still runs and close the proxies (afterEach: a failed test leaves nothing behind). */
  async destroy(): Promise<void> {
    for (const node of this.nodes) await node.kill9()
    for (const node of this.nodes) await node.proxy?.close()
  }

  /** Every node's log tail, for a failure message. */
  tails(lines = 30): string {
    return this.nodes.map((n) => n.tail(lines)).join('\n')
  }

  /** Rows of `sql` (a SELECT), read as the superuser over the Unix socket (not through any node's proxy). */
  async query<T>(sql: string): Promise<T[]> {
    const text = await this.pg.psql(`SELECT coalesce(json_agg(t), '[]'::json) FROM (${sql}) t`, this.database)
    return JSON.parse(text) as T[]
  }

  async jobs(): Promise<StoreJob[]> {
    return this.query<StoreJob>('SELECT id, name, source_path, status, attempts, output_path, created_at, started_at, completed_at, leased_by, lease_until FROM jobs ORDER BY seq')
  }

  async history(): Promise<StoreHistory[]> {
    return this.query<StoreHistory>('SELECT id, job_id, at, from_status, to_status, detail FROM job_history ORDER BY id')
  }

  /** How many jobs are in each status. */
  async statusCounts(): Promise<Record<string, number>> {
    const rows = await this.query<{status: string; n: number}>('SELECT status, count(*)::int AS n FROM jobs GROUP BY status')
    return Object.fromEntries(rows.map((r) => [r.status, r.n]))
  }

  /**
   * Poll `probe` (every `pollMs`) until it returns a value; a probe that throws (the server restarting)
   * counts as not yet. Fails after `timeoutMs` with the last value or error and every node's log tail.
   */
  async waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000, pollMs = 250): Promise<T> {
    const end = Date.now() + timeoutMs
    let last: unknown
    while (Date.now() < end) {
      try {
        const value = await probe()
        if (value) return value
        last = value
      } catch (error) {
        last = error
      }
      await sleep(pollMs)
    }
    const counts = await this.statusCounts().catch((error: unknown) => String(error))
    // The headline comes last, after the logs: a CI that shows only the end of the output still shows what failed and each node's state.
    throw new Error(`\n${this.tails()}\n--- nodes ---\n${this.nodes.map((n) => n.summary()).join('\n')}\ntimed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)}; jobs by status: ${JSON.stringify(counts)})`)
  }

  /** Wait until `count` jobs succeeded (and report the counts by status while waiting). */
  async waitSucceeded(count: number, timeoutMs: number): Promise<void> {
    await this.waitFor(`${count} jobs succeeded`, async () => {
      const counts = await this.statusCounts()
      if ((counts.succeeded ?? 0) >= count) return true
      const failed = (counts.failed ?? 0) + (counts.dead ?? 0)
      if (failed > 0) throw new Error(`jobs failed: ${JSON.stringify(counts)}`)
      return undefined
    }, timeoutMs, 500)
  }

  /** Wait until at least `count` jobs are running at once (the moment to inject a fault). */
  async waitRunning(count: number, timeoutMs = 60_000, on?: string): Promise<StoreJob[]> {
    return this.waitFor(`${count} running jobs${on ? ` on ${on}` : ''}`, async () => {
      const running = (await this.jobs()).filter((j) => j.status === 'running' && (on === undefined || j.leased_by === on))
      return running.length >= count ? running : undefined
    }, timeoutMs, 50)
  }
}
