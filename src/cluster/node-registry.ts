import {hostname} from 'node:os'

import {H2KError} from '@hyper2kvm/plugin-api'
import {withMappedErrors} from '../errors/map-foreign-error.js'
import type {SqlDb} from '../store/sql-db.js'
import {storeNow, storeNowSql} from './store-clock.js'

/** A node's state as cluster_nodes keeps it. */
export type NodeState = 'running' | 'paused' | 'draining' | 'stopping' | 'stopped'

export interface NodeRow {
  node_id: string
  hostname: string
  pid: number
  started_at: number
  heartbeat_at: number
  state: NodeState
  running_jobs: number
  max_concurrent_jobs: number
  version: string | null
}

/** Whether `pid` is a live process of this host (EPERM: alive, someone else's). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * This daemon's row in `cluster_nodes`: written at start (refusing a node id another live daemon uses),
 * its heartbeat (state, running jobs) on every lease keeper tick, `stopped` at a clean stop. Times are the
 * store's (store-clock.ts).
 */
export class NodeRegistry {
  private readonly host = hostname()

  constructor(
    private readonly db: SqlDb,
    readonly nodeId: string,
    private readonly info: {version?: string; maxConcurrentJobs: () => number},
  ) {}

  private guard<T>(what: string, fn: () => T): T {
    return withMappedErrors({operation: what, path: this.db.location}, fn)
  }

  /**
   * Register at start. Another daemon alive under the same node id — a row not stopped, whose heartbeat is
   * younger than `freshMs`, from another host or another live pid of this one — is H2K_DAEMON_RUNNING.
   */
  register(freshMs: number): void {
    this.guard('Cannot register the node', () =>
      this.db.transaction(() => {
        const now = storeNow(this.db)
        const row = this.db.get<NodeRow>('SELECT * FROM cluster_nodes WHERE node_id = ?', [this.nodeId])
        if (row !== undefined && row.state !== 'stopped' && now - Number(row.heartbeat_at) < freshMs && row.pid !== process.pid) {
          const elsewhere = row.hostname !== this.host
          if (elsewhere || pidAlive(row.pid)) {
            throw new H2KError('H2K_DAEMON_RUNNING', `Another daemon runs as node ${this.nodeId} on this store (${elsewhere ? `host ${row.hostname}` : `pid ${row.pid}`}, heartbeat ${Math.round((now - Number(row.heartbeat_at)) / 1000)} s ago).`, {
              details: {node_id: this.nodeId},
              suggestions: ['Give every daemon on one store its own node_id and its own state_dir (the node id is kept in state_dir/node_id).'],
            })
          }
        }
        this.db.run(
          `INSERT INTO cluster_nodes (node_id, hostname, pid, started_at, heartbeat_at, state, running_jobs, max_concurrent_jobs, version) VALUES (?, ?, ?, ?, ?, 'running', 0, ?, ?)
           ON CONFLICT (node_id) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, state = excluded.state, running_jobs = 0, max_concurrent_jobs = excluded.max_concurrent_jobs, version = excluded.version`,
          [this.nodeId, this.host, process.pid, now, now, this.info.maxConcurrentJobs(), this.info.version ?? null],
        )
      }),
    )
  }

  /** The heartbeat: alive now, in `state`, running `running` jobs. */
  heartbeat(state: NodeState, running: number): void {
    this.guard('Cannot record the heartbeat', () => {
      const now = storeNowSql(this.db)
      this.db.run(`UPDATE cluster_nodes SET heartbeat_at = ${now.sql}, state = ?, running_jobs = ?, max_concurrent_jobs = ? WHERE node_id = ?`, [...now.params, state, running, this.info.maxConcurrentJobs(), this.nodeId])
    })
  }

  /** A clean stop. */
  stopped(): void {
    this.heartbeat('stopped', 0)
  }

  /** Every node the store knows, newest heartbeat first. */
  nodes(): NodeRow[] {
    return this.guard('Cannot read cluster nodes', () => this.db.all<NodeRow>('SELECT * FROM cluster_nodes ORDER BY heartbeat_at DESC, node_id'))
  }
}
