import type {SqlDb} from '../store/sql-db.js'
import {nowMsSql} from '../store/store-clock.js'
import {tableLines} from './job-table.js'

/** One daemon of a cluster as `ctl status|stats|jobs` show it. */
export interface ClusterNodeView {
  node_id: string
  hostname: string
  pid: number
  /** What the node last reported (running, paused, draining, stopping, stopped). */
  state: string
  /** Whether its heartbeat is younger than lease_ttl (and it did not stop). */
  alive: boolean
  last_heartbeat: string
  heartbeat_age_seconds: number
  started_at: string
  /** Jobs it runs as its last heartbeat said. */
  running_jobs: number
  /** Running jobs whose lease it holds in the store now. */
  leased_jobs: number
  max_concurrent_jobs: number
  version: string | null
}

/** Job counts over the whole cluster, from the shared store. */
export interface ClusterTotals {
  total_processed: number
  total_failed: number
  duplicates: number
  queued: number
  running: number
  retry_waiting: number
  cancelled: number
  skipped: number
  /** Percent of finished conversions that succeeded (null: none finished yet). */
  success_rate: number | null
  nodes_alive: number
  nodes_total: number
}

export interface ClusterView {
  nodes: ClusterNodeView[]
  totals: ClusterTotals
}

interface NodeRow {
  node_id: string
  hostname: string
  pid: number
  state: string
  started_at: number
  heartbeat_at: number
  running_jobs: number
  max_concurrent_jobs: number
  version: string | null
  age_ms: number
  leased: number
}

/** Every node that ever ran on the store and the cluster's job counts; `leaseTtlMs` decides who is alive. */
export function readClusterView(db: SqlDb, leaseTtlMs: number): ClusterView {
  const rows = db.all<NodeRow>(
    `SELECT n.*, ${nowMsSql(db.engine)} - n.heartbeat_at AS age_ms, (SELECT COUNT(*) FROM jobs j WHERE j.status = 'running' AND j.leased_by = n.node_id) AS leased FROM cluster_nodes n ORDER BY n.node_id`,
  )
  const nodes = rows.map((row): ClusterNodeView => {
    const age = Math.max(0, Number(row.age_ms))
    return {
      alive: row.state !== 'stopped' && age <= leaseTtlMs,
      heartbeat_age_seconds: Math.round(age / 100) / 10,
      hostname: row.hostname,
      last_heartbeat: new Date(Number(row.heartbeat_at)).toISOString(),
      leased_jobs: Number(row.leased),
      max_concurrent_jobs: Number(row.max_concurrent_jobs),
      node_id: row.node_id,
      pid: Number(row.pid),
      running_jobs: Number(row.running_jobs),
      started_at: new Date(Number(row.started_at)).toISOString(),
      state: row.state,
      version: row.version,
    }
  })
  const counts = new Map(db.all<{status: string; n: number}>('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status').map((r) => [r.status, Number(r.n)]))
  const count = (...statuses: string[]): number => statuses.reduce((sum, s) => sum + (counts.get(s) ?? 0), 0)
  const processed = count('succeeded')
  const failed = count('failed', 'dead')
  return {
    nodes,
    totals: {
      cancelled: count('cancelled'),
      duplicates: count('duplicate'),
      nodes_alive: nodes.filter((n) => n.alive).length,
      nodes_total: nodes.length,
      queued: count('queued'),
      retry_waiting: count('retry_wait'),
      running: count('running'),
      skipped: count('skipped'),
      success_rate: processed + failed === 0 ? null : Math.round((processed / (processed + failed)) * 1000) / 10,
      total_failed: failed,
      total_processed: processed,
    },
  }
}

/** The cluster for a person: one line of totals, then a table of nodes (every cell escaped). */
export function clusterLines(view: ClusterView): string[] {
  const t = view.totals
  const rate = t.success_rate === null ? 'n/a' : `${t.success_rate}%`
  const lines = [
    `Cluster: ${t.nodes_alive} of ${t.nodes_total} node(s) alive; processed ${t.total_processed}, failed ${t.total_failed}, duplicates ${t.duplicates}, queued ${t.queued}, running ${t.running}, waiting for retry ${t.retry_waiting}; success rate ${rate}`,
  ]
  const rows = view.nodes.map((n) => [n.node_id, n.hostname, n.alive ? n.state.toUpperCase() : n.state === 'stopped' ? 'STOPPED' : 'DEAD', `${n.heartbeat_age_seconds}s ago`, `${n.running_jobs}/${n.max_concurrent_jobs}`, String(n.pid)])
  for (const line of tableLines(['NODE', 'HOST', 'STATE', 'HEARTBEAT', 'RUNNING', 'PID'], rows)) lines.push(`  ${line}`)
  return lines
}
