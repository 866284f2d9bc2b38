import {H2KError} from '@hyper2kvm/plugin-api'
import type {JobLeases} from '../cluster/job-leases.js'
import type {StoreOutage} from '../cluster/store-outage.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {DaemonJobService, type JobService} from '../service/job-service.js'
import type {StageRegistry} from '../stages/stage-registry.js'
import type {Clock} from '../time/clock.js'
import type {DaemonConfig} from './config.js'
import type {DaemonEvent, DaemonState} from './daemon-events.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import {dependencyGate, type DispatchGate, notBeforeGate} from './dispatch-gate.js'
import {dueJobs} from './due-jobs.js'
import {GateSet} from './gate-set.js'
import {definitionOf} from './job-definition.js'
import type {JobPolicy} from './job-policy.js'
import {JobRunner, type RunningJob} from './job-runner.js'
import {PumpDependencies} from './pump-dependencies.js'
import type {JobRow, JobStore} from './store.js'

/** What the pool needs from the daemon. */
export interface WorkerPoolContext {
  store: JobStore
  registry: StageRegistry
  config: () => DaemonConfig
  state: () => DaemonState
  clock: Clock
  emit: (event: DaemonEvent) => void
  log: DaemonLogFn
  /** Settle the claim of a drop-dir job that ended (a no-op for API and schedule jobs). */
  settle: (row: JobRow) => Promise<void>
  /** A job left the pool (whatever its end): the daemon writes its stats and pumps again, or finishes a drain. */
  jobEnded: () => void
  /** This node's job leases (claims and conditional outcome writes). */
  leases: JobLeases
  /** Store outages: the pump and the claims report them and try again on the next pump. */
  outage: StoreOutage
  /** Whether this node may claim jobs (false while it is fenced: its leases could not be renewed). */
  canClaim: () => boolean
}

/**
 * The daemon's worker pool: up to max_concurrent_jobs jobs run at once (job-runner.ts), started by the
 * pump when every dispatch gate lets them through (gate-set.ts); the JobService (API, schedules) acts on the
 * same jobs and wakes the pump.
 */
export class WorkerPool {
  readonly running = new Map<string, RunningJob>()
  private readonly runner: JobRunner
  private readonly jobs: DaemonJobService
  /** Asked about every queued job before it starts (dispatch-gate.ts). */
  private readonly gates: GateSet
  /** The dependencies of the jobs a pump looks at, read once per pump (pump-dependencies.ts). */
  private readonly dependencies: PumpDependencies

  constructor(private readonly ctx: WorkerPoolContext) {
    const {clock, config, emit, log, settle, store} = ctx
    const pump = () => this.pump()
    this.runner = new JobRunner({clock, config, emit, leaseMayHold: ctx.canClaim, leases: ctx.leases, log, outage: ctx.outage, pump, registry: ctx.registry, settle, stopping: () => ctx.state() === 'STOPPING', store})
    this.jobs = new DaemonJobService({abortRunning: (id, reason) => this.abortRunning(id, reason), config, emit, log, settle, store, wake: pump})
    this.dependencies = new PumpDependencies(store)
    this.gates = new GateSet([notBeforeGate, dependencyGate(this.dependencies)], pump, clock)
  }

  /** The jobs of this daemon as the API and schedules act on them. */
  get jobService(): JobService {
    return this.jobs
  }

  /** A job's policy as the store keeps it (the window piece reads its window keys). */
  policyOf(id: string): JobPolicy | undefined {
    const row = this.ctx.store.job(id)
    return row ? definitionOf(row).policy : undefined
  }

  /** One more dispatch gate (dispatch-gate.ts), asked after the built-in ones (not_before, dependencies). */
  addGate(gate: DispatchGate): void {
    this.gates.add(gate)
    this.pump()
  }

  /** The last answer of `waiting()` (what status and stats show while the store does not answer). */
  private lastWaiting: JobRow[] = []

  /** Jobs recorded but not running here: queued, waiting for a retry (or running on another node); during a store outage, the last answer. */
  waiting(): JobRow[] {
    const rows = this.ctx.outage.run('jobs', () => this.ctx.store.unfinished().filter((r) => !this.running.has(r.id)))
    if (rows !== undefined) this.lastWaiting = rows
    return this.lastWaiting
  }

  /**
   * Start due jobs, oldest first, while fewer than max_concurrent_jobs run (never while paused, draining or
   * stopping). The gates are asked about waiting jobs even when no slot is free (the pool full, paused,
   * draining), so a held job says why at once (not_before/wait_reason, `ctl jobs`, the API); the pump wakes
   * again at the earliest not_before.
   */
  pump(): void {
    const state = this.ctx.state()
    if (state === 'STOPPING') return
    const slots = this.freeSlots()
    const {emit, log, settle, store} = this.ctx
    // Never throws: a store outage is logged once and the next pump (a tick, a job's end) tries again.
    const due = this.ctx.outage.run('pump', () => dueJobs({dependencies: this.dependencies, emit, gates: this.gates, log, settle, store}, (id) => this.running.has(id), slots, this.ctx.clock.now())) ?? []
    for (const row of due) this.launch(row)
  }

  /**
   * The periodic look for work (the intake tick): a pump only when a job could start. Jobs queued here wake
   * the pump themselves (a claim, the API, a job's end); what only the tick finds, a job queued by another
   * node or a retry whose delay is over, can wait for a free slot. A full pool is not asked again and again
   * about every waiting job, which a burst of thousands on a PostgreSQL store pays for in round trips.
   */
  pumpIfFree(): void {
    if (this.freeSlots() > 0) this.pump()
  }

  /** How many more jobs may start now (0 while paused, draining, stopping or fenced). */
  private freeSlots(): number {
    return this.ctx.state() === 'RUNNING' && this.ctx.canClaim() ? Math.max(0, this.ctx.config().maxConcurrentJobs - this.running.size) : 0
  }

  /** This node lost the lease of a running job (or fenced itself): the job is aborted and nothing of it is written. */
  abandon(id: string, error: H2KError): void {
    const entry = this.running.get(id)
    if (!entry || entry.leaseLost !== undefined) return
    entry.leaseLost = error
    entry.controller.abort(error)
  }

  /** Daemon stopping: every running job is aborted (and re-queued by the runner); resolves once all ended. */
  async abortAll(reason: string): Promise<void> {
    for (const job of this.running.values()) job.controller.abort(new H2KError('H2K_CANCELLED', `Daemon stopping (${reason}).`))
    await Promise.all([...this.running.values()].map((j) => j.done))
  }

  close(): void {
    this.gates.close()
  }

  /** Cancel a running job (JobService.cancel): it is aborted and ends cancelled, never re-queued. */
  private abortRunning(id: string, reason: string): boolean {
    const entry = this.running.get(id)
    if (!entry) return false
    entry.cancelReason = reason
    entry.controller.abort(new H2KError('H2K_CANCELLED', `Cancelled: ${reason}`))
    return true
  }

  /** Start a due job if this node wins its claim (another node may have been first: then nothing happens). */
  private launch(due: JobRow): void {
    const claimed = this.ctx.outage.run('claim', () => this.runner.claim(due))
    if (claimed === undefined) return
    const {row, attemptNo} = claimed
    const definition = definitionOf(row)
    const entry: RunningJob = {attemptNo, controller: new AbortController(), done: Promise.resolve(), row, size: definition.size, startedAt: Date.now()}
    this.running.set(row.id, entry)
    entry.done = this.runner
      .execute(entry, definition)
      .catch((error: unknown) => this.ctx.log('error', 'job:internal-error', {file: row.source_path, job: row.id}, `${mapForeignError(error).message} (the job stays in the store and is retried on the next start)`))
      .finally(() => {
        this.running.delete(row.id)
        this.ctx.jobEnded()
      })
  }
}
