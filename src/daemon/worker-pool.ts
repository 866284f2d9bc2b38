import {H2KError} from '@hyper2kvm/plugin-api'
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

  constructor(private readonly ctx: WorkerPoolContext) {
    const {clock, config, emit, log, settle, store} = ctx
    const pump = () => this.pump()
    this.runner = new JobRunner({clock, config, emit, log, pump, registry: ctx.registry, settle, stopping: () => ctx.state() === 'STOPPING', store})
    this.jobs = new DaemonJobService({abortRunning: (id, reason) => this.abortRunning(id, reason), config, emit, log, settle, store, wake: pump})
    this.gates = new GateSet([notBeforeGate, dependencyGate(store)], pump, clock)
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

  /** Jobs recorded but not running: queued, or waiting for a retry. */
  waiting(): JobRow[] {
    return this.ctx.store.unfinished().filter((r) => !this.running.has(r.id))
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
    const slots = state === 'RUNNING' ? Math.max(0, this.ctx.config().maxConcurrentJobs - this.running.size) : 0
    const {emit, log, settle, store} = this.ctx
    for (const row of dueJobs({emit, gates: this.gates, log, settle, store}, (id) => this.running.has(id), slots, this.ctx.clock.now())) this.launch(row)
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

  private launch(row: JobRow): void {
    const definition = definitionOf(row)
    const entry: RunningJob = {controller: new AbortController(), done: Promise.resolve(), row, size: definition.size, startedAt: Date.now()}
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
