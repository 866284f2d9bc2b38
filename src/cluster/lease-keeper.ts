import {rm} from 'node:fs/promises'

import type {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import {fenceAfterMs, mustFence} from './fence-rule.js'
import {type ExpiredLease, type JobLeases, leaseLost} from './job-leases.js'
import type {NodeRegistry, NodeState} from './node-registry.js'
import type {StoreOutage} from './store-outage.js'

/** What the keeper needs from the daemon. */
export interface LeaseKeeperContext {
  leases: JobLeases
  registry: NodeRegistry
  outage: StoreOutage
  log: DaemonLogFn
  /** heartbeat_interval and lease_ttl (ms), and B: the bound of one store call (ms). */
  timing: () => {heartbeatMs: number; leaseTtlMs: number; statementBoundMs: number}
  /** The ids of the jobs this node runs now. */
  running: () => readonly string[]
  /** Abort one running job whose lease is lost (its work is abandoned, nothing of it is written). */
  abort: (id: string, error: H2KError) => void
  /** The node's state for its heartbeat. */
  state: () => NodeState
  /** Start what is due (after a take-over, after the fence lifts). */
  pump: () => void
  /** Wall time in ms (tests pass a fake one). */
  now?: () => number
}

/**
 * The lease keeper of one node: every heartbeat_interval it renews the leases of the jobs it runs (a job
 * whose lease is gone is aborted with H2K_LEASE_LOST), records its heartbeat, and re-queues the running jobs
 * of any node whose lease expired (exactly once among racing nodes; their partial outputs removed first).
 * If no renewal succeeded for θ (fence-rule.ts) it fences: aborts every running job with H2K_LEASE_LOST and
 * claims nothing until the store answers again; then it registers again and claims afresh.
 */
export class LeaseKeeper {
  private timer?: NodeJS.Timeout
  private busy = false
  private lastRenewedAt: number
  private fencedSince?: number
  private readonly now: () => number

  constructor(private readonly ctx: LeaseKeeperContext) {
    this.now = ctx.now ?? Date.now
    this.lastRenewedAt = this.now()
  }

  /** Fenced: no job may be claimed. */
  get fenced(): boolean {
    return this.fencedSince !== undefined
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.ctx.timing().heartbeatMs)
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** One heartbeat: renew, record the heartbeat, take expired leases over; fence when renewals failed for θ. */
  async tick(): Promise<void> {
    if (this.busy) return
    this.busy = true
    try {
      const issuedAt = this.now()
      const ids = this.ctx.running()
      let held: Set<string>
      try {
        if (this.fenced) this.ctx.registry.register(this.ctx.timing().leaseTtlMs)
        held = this.ctx.leases.renew(ids)
        this.ctx.registry.heartbeat(this.ctx.state(), ids.length)
        this.ctx.outage.answered()
      } catch (error) {
        if (!this.ctx.outage.failed(error, 'heartbeat')) this.ctx.log('error', 'heartbeat:error', {}, mapForeignError(error).message)
        this.maybeFence()
        return
      }
      this.lastRenewedAt = issuedAt
      for (const id of ids) if (!held.has(id)) this.ctx.abort(id, leaseLost(id, 'renewal found the lease gone'))
      if (this.fencedSince !== undefined) {
        this.ctx.log('info', 'cluster:unfenced', {fenced_ms: this.now() - this.fencedSince}, 'the store answers again: registered, claiming afresh')
        this.fencedSince = undefined
      }
      try {
        await this.takeOverExpired()
      } catch (error) {
        // The store went away (or refused) between the renewal and this look: the next heartbeat looks again.
        // Never thrown: the tick runs from a timer, and a rejection there would end the daemon.
        if (!this.ctx.outage.failed(error, 'take-over')) this.ctx.log('error', 'take-over:error', {}, mapForeignError(error).message)
      }
      this.ctx.pump()
    } finally {
      this.busy = false
    }
  }

  /** Fence when no renewal succeeded for θ. */
  private maybeFence(): void {
    const timing = this.ctx.timing()
    if (this.fenced || !mustFence(this.now(), this.lastRenewedAt, fenceAfterMs(timing))) return
    this.fencedSince = this.now()
    const ids = this.ctx.running()
    this.ctx.log('error', 'cluster:fenced', {node: this.ctx.leases.nodeId, running: ids.length, since_renewal_ms: this.now() - this.lastRenewedAt}, 'no lease renewal succeeded in time: every running job is aborted (H2K_LEASE_LOST) and nothing is claimed until the store answers')
    for (const id of ids) this.ctx.abort(id, leaseLost(id, 'the node fenced itself'))
  }

  /** Re-queue the running jobs whose lease expired (never this node's own running ones: they were aborted). */
  private async takeOverExpired(): Promise<void> {
    const mine = new Set(this.ctx.running())
    for (const lease of this.ctx.leases.expired()) {
      if (mine.has(lease.id) || !this.ctx.leases.takeOver(lease)) continue
      await this.requeue(lease)
    }
  }

  private async requeue(lease: ExpiredLease): Promise<void> {
    const fields = {file: lease.source_path, job: lease.id, lost_by: lease.leased_by ?? undefined}
    this.ctx.log('warn', 'job:taken-over', fields, `lease of node ${lease.leased_by ?? '(none)'} expired: re-queued here, partial outputs removed`)
    await rm(lease.output_path, {force: true, recursive: true}).catch((error: unknown) => {
      this.ctx.log('warn', 'job:cleanup-failed', {job: lease.id, output: lease.output_path}, `cannot remove what the lost attempt left: ${mapForeignError(error).message}`)
    })
    try {
      this.ctx.leases.requeue(lease.id, `lease of node ${lease.leased_by ?? '(none)'} expired: taken over and re-queued by node ${this.ctx.leases.nodeId}, partial outputs removed`)
    } catch (error) {
      // Still running under this node's lease, which nobody renews: it expires and is taken over again.
      if (!this.ctx.outage.failed(error, 'take-over')) this.ctx.log('error', 'job:take-over-failed', {job: lease.id}, mapForeignError(error).message)
    }
  }
}
