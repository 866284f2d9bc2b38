import type {DaemonConfig} from '../daemon/config.js'
import type {DaemonState} from '../daemon/daemon-events.js'
import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import type {JobStore} from '../daemon/store.js'
import {packageVersion} from '../http/http-piece.js'
import {statementBoundMs} from './fence-rule.js'
import {JobLeases} from './job-leases.js'
import {LeaseKeeper} from './lease-keeper.js'
import {NodeRegistry, type NodeState} from './node-registry.js'
import type {StoreOutage} from './store-outage.js'

const NODE_STATES: Record<DaemonState, NodeState> = {DRAINING: 'draining', PAUSED: 'paused', RUNNING: 'running', STOPPING: 'stopping'}

/** What the node needs from the daemon once its pool exists. */
export interface ClusterNodeHooks {
  running: () => readonly string[]
  abort: (id: string, error: import('@hyper2kvm/plugin-api').H2KError) => void
  state: () => DaemonState
  pump: () => void
}

/**
 * This daemon as one node of the store: its registry row (node-registry.ts), its job leases (job-leases.ts)
 * and the keeper that renews them, heart-beats, takes expired leases over and fences (lease-keeper.ts).
 * The same on SQLite (one node) and PostgreSQL (several).
 */
export class ClusterNode {
  readonly registry: NodeRegistry
  readonly leases: JobLeases
  private keeper?: LeaseKeeper

  constructor(
    private readonly store: JobStore,
    readonly nodeId: string,
    private readonly config: () => DaemonConfig,
    private readonly outage: StoreOutage,
    private readonly log: DaemonLogFn,
  ) {
    this.registry = new NodeRegistry(store.sql, nodeId, {maxConcurrentJobs: () => config().maxConcurrentJobs, version: packageVersion()})
    this.leases = new JobLeases(store, nodeId, () => config().leaseTtl * 1000)
  }

  /** Register (H2K_DAEMON_RUNNING when another live daemon has this node id on the store). */
  register(): void {
    this.registry.register(this.config().leaseTtl * 1000)
  }

  /** Start heart-beating once the pool runs. */
  start(hooks: ClusterNodeHooks): void {
    this.keeper = new LeaseKeeper({
      abort: hooks.abort,
      leases: this.leases,
      log: this.log,
      outage: this.outage,
      pump: hooks.pump,
      registry: this.registry,
      running: hooks.running,
      state: () => NODE_STATES[hooks.state()],
      timing: () => {
        const config = this.config()
        return {heartbeatMs: config.heartbeatInterval * 1000, leaseTtlMs: config.leaseTtl * 1000, statementBoundMs: statementBoundMs(config.store)}
      },
    })
    this.keeper.start()
  }

  /** Whether this node may claim jobs (not fenced). */
  canClaim(): boolean {
    return this.keeper?.fenced !== true
  }

  /** A clean stop: no more heartbeats, the row says stopped (an outage now is logged, not thrown). */
  stop(): void {
    this.keeper?.stop()
    if (this.store.sql.open) this.outage.run('node-stop', () => this.registry.stopped())
  }
}
