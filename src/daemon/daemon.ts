import {mkdir} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {ClusterNode} from '../cluster/cluster-node.js'
import {resolveNodeId} from '../cluster/node-id.js'
import {StoreOutage} from '../cluster/store-outage.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {sandboxRunner} from '../sandbox/sandbox-probe.js'
import type {StageRegistry} from '../stages/stage-registry.js'
import {BookkeepingDirs} from './bookkeeping.js'
import {ClaimGate} from './claim-gate.js'
import {ClaimPlanner} from './claim-planner.js'
import type {DaemonConfig} from './config.js'
import {type ControlCommand, type ControlReply} from './control-server.js'
import {ControlSockets} from './control-sockets.js'
import type {DaemonEvent, DaemonSnapshot, DaemonState} from './daemon-events.js'
import {type DaemonPiece, dispatch, type ReadinessCheck, startPieces} from './daemon-pieces.js'
import {currentJobs} from './current-jobs.js'
import {DaemonStats} from './daemon-stats.js'
import {ClusterCommandListener} from './cluster-command-listener.js'
import {IntakeClaims} from './intake-claims.js'
import {IntakeScanner} from './intake-items.js'
import {IntakeLoop} from './intake-loop.js'
import type {DispatchGate} from './dispatch-gate.js'
import {sweepSkipped} from './dependency-skip.js'
import type {JobService} from '../service/job-service.js'
import {type Clock, systemClock} from '../time/clock.js'
import {reapLeftoverChildren} from './leftover-children.js'
import {DaemonLog} from './daemon-log.js'
import {JobLogStore, jobLogTap} from './job-log-store.js'
import {readinessChecks} from './readiness.js'
import {recoverClaims} from './recover-claims.js'
import {planReload} from './reload-config.js'
import {ClaimSettler} from './settle-claim.js'
import {StabilityTracker} from './stability.js'
import {type JobRow, JobStore} from './store.js'
import {storeTarget} from '../store/store-target.js'
import {WorkerPool} from './worker-pool.js'

export type {DaemonState} from './daemon-events.js'

/** stats.json in a state directory (the daemon's state_dir; by default output_dir/.daemon). */
export const statsPath = (stateDirectory: string): string => join(stateDirectory, 'stats.json')

export interface DaemonOptions {
  /** The one clock of the pump, its gates, retry timers, windows and schedules (default the system's); tests pass a fake one. */
  clock?: Clock
}

/**
 * The daemon: an intake loop around the one runJob(), for the three layouts (layout.ts). It composes
 * pieces that take narrow inputs: the stability tracker and claim gate decide when an item of the inbox
 * (a disk with the files it names, a job config, a manifest) may be claimed; the planner claims it by
 * atomic renames into <processing>/<claim-id>/ and records its jobs in the SQLite store; a pool of
 * max_concurrent_jobs workers runs them (job-runner.ts); the settler moves a finished claim's files on
 * (processed, failed with <file>.error.json, duplicates) with their sidecars. Stats, notifications, the
 * HTTP listener and sd_notify hear the daemon's events (daemon-events.ts). Outputs go to
 * output_dir/<date>/<vm>/.
 */
export class Daemon {
  private config: DaemonConfig
  private readonly registry: StageRegistry
  /** This daemon among those sharing a store (node_id, else kept in state_dir/node_id): its leases, its outbox rows. */
  private nodeId!: string
  /** Its registry row, job leases and lease keeper (src/cluster/). */
  private node!: ClusterNode
  /** Store outages, logged once each; every timer path reports them here instead of throwing. */
  private readonly outage: StoreOutage
  private store!: JobStore
  /** The intake claim rows of this node (intake-claims.ts). */
  private claims!: IntakeClaims
  /** `ctl … --all` through the store (a PostgreSQL store only: SQLite has one daemon, reached on its socket). */
  private clusterCommands?: ClusterCommandListener
  private state: DaemonState = 'RUNNING'
  private control?: ControlSockets
  /** The inbox scans and claims (intake-loop.ts). */
  private intake?: IntakeLoop
  private readonly scanner: IntakeScanner
  private readonly stability: StabilityTracker
  /** The layout's own directories, held open and checked (never followed through a symlink). */
  private readonly bookkeeping: BookkeepingDirs
  private planner!: ClaimPlanner
  private settler!: ClaimSettler
  /** The workers, the pump and its gates, the JobService (worker-pool.ts). */
  private pool!: WorkerPool
  private readonly clock: Clock
  private readonly stopping = new AbortController()
  private statsTimer?: NodeJS.Timeout
  private readonly startedAt = new Date()
  /** Set once the store, the pool and the pieces exist: control commands are answered from then on. */
  private started = false
  private readonly statistics: DaemonStats
  /** Notifications, the HTTP listener, sd_notify … (daemon-pieces.ts): they hear every job and state event. */
  private pieces: DaemonPiece[] = []
  /** The one writer of log lines (stderr or log_file); commands/daemon.ts reopens it on SIGUSR1/SIGHUP. */
  readonly logger: DaemonLog
  private finished!: () => void
  private readonly whenFinished = new Promise<void>((resolve) => (this.finished = resolve))

  constructor(config: DaemonConfig, registry: StageRegistry, options: DaemonOptions = {}) {
    this.config = config
    this.registry = registry
    this.clock = options.clock ?? systemClock
    this.logger = new DaemonLog({file: config.logFile, format: config.logFormat, level: config.logLevel})
    this.scanner = new IntakeScanner(config.layout.kind, config.layout.inbox, () => this.config.jobDefaults)
    const log = this.log.bind(this)
    // The held-open-for-writing / incomplete-by-format check (claim-gate.ts) after the quiet period.
    const gate = new ClaimGate(() => ({inbox: this.config.layout.inbox, intervalMs: this.config.stabilityIntervalMs, timeoutS: this.config.fileStableTimeout}), log)
    this.stability = new StabilityTracker(() => ({checks: this.config.fileStableChecks, inbox: this.config.layout.inbox, intervalMs: this.config.stabilityIntervalMs, timeoutS: this.config.fileStableTimeout}), gate, log)
    this.bookkeeping = new BookkeepingDirs(config.layout.bookkeeping)
    this.outage = new StoreOutage(this.log.bind(this))
    this.statistics = new DaemonStats({currentJobs: () => currentJobs(this.pool.running.values(), this.pool.waiting()), snapshot: () => this.snapshot()}, log)
  }

  /** A bookkeeping path (real) as the held descriptors reach it; H2K_UNSAFE_PATH when its directory is refused. */
  private safe(real: string): string {
    return this.bookkeeping.safe(real)
  }

  /** Re-check the bookkeeping directories; a refused one is logged once (and shown by `ctl status`). Returns whether all are usable. */
  private checkBookkeeping(): boolean {
    for (const {dir, problem} of this.bookkeeping.check()) {
      this.log('error', 'bookkeeping:refused', {dir}, `${problem}: refused and never followed; no new item is claimed until it is removed (the daemon recreates it)`)
    }
    for (const {dir, advice} of this.bookkeeping.checkParents()) this.log('warn', 'bookkeeping:not-sticky', {dir}, advice)
    return this.bookkeeping.healthy()
  }

  // ---- events for the pieces around the daemon (daemon-events.ts) -----------------------------------

  private emit(event: DaemonEvent): void {
    this.statistics.onDaemonEvent(event)
    dispatch(this.pieces, event, this.log.bind(this))
  }

  private setState(state: DaemonState): void {
    this.state = state
    this.emit({at: new Date(), state, type: 'daemon:state'})
  }

  /** Jobs recorded but not running: queued, or waiting for a retry. */
  private waiting(): JobRow[] {
    return this.pool?.waiting() ?? []
  }

  private get running(): ReadonlyMap<string, unknown> {
    return this.pool?.running ?? new Map()
  }

  snapshot(): DaemonSnapshot {
    const waiting = this.waiting()
    return {
      maxConcurrentJobs: this.config.maxConcurrentJobs,
      pendingFiles: this.stability.size,
      queued: waiting.length,
      retryWaiting: waiting.filter((r) => r.status === 'retry_wait').length,
      held: waiting.filter((r) => r.status === 'queued' && r.wait_reason !== null).length,
      running: this.running.size,
      startedAt: this.startedAt,
      state: this.state,
      intakeIntervalMs: this.config.stabilityIntervalMs,
      ...(this.intake?.lastTickAt ? {intakeTickAt: this.intake.lastTickAt} : {}),
    }
  }

  /** Readiness (readiness.ts): the store answers and takes writes, the directories are usable, the daemon takes new work. */
  async readiness(): Promise<ReadinessCheck[]> {
    return readinessChecks({bookkeepingProblems: () => this.bookkeeping.check(), inbox: this.config.layout.inbox, pingStore: () => this.store.ping(), state: this.state})
  }

  // ---- logging: one line per event ------------------------------------------------------------------

  log(level: 'error' | 'warn' | 'info' | 'debug', event: string, fields: Record<string, unknown> = {}, message = ''): void {
    this.logger.log(level, event, fields, message)
  }

  // ---- start / stop ---------------------------------------------------------------------------------

  /** Open the store, recover from a crash, listen on the control socket, start the pieces and start watching. */
  async start(): Promise<void> {
    const {outputDir} = this.config
    const inbox = this.config.layout.inbox
    // Files the daemon creates (error files, sidecars, daemon.log, outputs) are not world-readable.
    process.umask(this.config.umask)
    await mkdir(inbox, {recursive: true})
    this.checkBookkeeping()
    const state = this.config.stateDir
    await mkdir(state, {mode: 0o700, recursive: true})
    if (this.config.logFile) await mkdir(dirname(this.config.logFile), {recursive: true})
    // A daemon that would fail every job (no bwrap, no user namespaces) refuses to start instead.
    if (this.config.sandbox) await sandboxRunner()
    const log = this.log.bind(this)
    this.nodeId = await resolveNodeId(state, this.config.nodeId)
    this.control = await ControlSockets.listen({outputDir, sqlite: this.config.store === undefined, stateDir: state}, {handle: (command: ControlCommand) => this.controlReply(command), log})
    this.store = JobStore.open(storeTarget(join(state, 'jobs.db'), this.config.store))
    this.node = new ClusterNode(this.store, this.nodeId, () => this.config, this.outage, log)
    try {
      this.node.register()
    } catch (error) {
      await this.control?.close()
      this.store.close()
      throw error
    }
    // Each job's own log lines (GET /api/v1/jobs/{id}/log): a copy of the lines naming it, from the one log writer.
    const jobLog = new JobLogStore(this.store.sql)
    this.logger.addTap(jobLogTap(jobLog))
    const config = () => this.config
    const emit = (event: DaemonEvent) => this.emit(event)
    this.claims = new IntakeClaims(this.store.sql, this.nodeId, () => this.config.leaseTtl * 1000)
    this.settler = new ClaimSettler(this.store, this.claims, config, (real) => this.safe(real), log)
    const settle = (intakeId: string) => this.settler.maybeSettle(intakeId)
    this.planner = new ClaimPlanner({claims: this.claims, config, emit, log, planned: () => this.pool.pump(), safe: (real) => this.safe(real), settle, stopping: this.stopping.signal, store: this.store})
    const settleJob = (row: JobRow) => this.settler.settleJob(row)
    const jobEnded = () => {
      void this.writeStats()
      if (this.state === 'DRAINING') void this.maybeDrained()
      else this.pool.pump()
    }
    this.pool = new WorkerPool({canClaim: () => this.node.canClaim(), clock: this.clock, config, emit, jobEnded, leases: this.node.leases, log, outage: this.outage, registry: this.registry, settle: settleJob, state: () => this.state, store: this.store})
    await reapLeftoverChildren(state, log)
    await recoverClaims({claims: this.claims, layout: this.config.layout, leases: this.node.leases, log, planner: this.planner, safe: (real) => this.safe(real), settler: this.settler, store: this.store})
    // A parent that ended badly just before a crash: its dependents are skipped now.
    for (const row of sweepSkipped({emit, log, store: this.store})) await settleJob(row)
    try {
      this.pieces = await startPieces({addGate: (gate) => this.addGate(gate), apiRoutes: [], clock: this.clock, config: this.config, emit, jobLog, jobPolicy: (id) => this.pool.policyOf(id), jobs: this.pool.jobService, log, nodeId: this.nodeId, readiness: () => this.readiness(), snapshot: () => this.snapshot(), sql: this.store.sql})
    } catch (error) {
      // A listener that cannot listen, a token missing: nothing of this start is left behind (socket, store).
      this.node.stop()
      await this.control?.close()
      this.store.close()
      this.bookkeeping.close()
      throw error
    }
    if (this.store.engine === 'postgres') {
      this.clusterCommands = ClusterCommandListener.start({apply: (command) => this.controlReply(command), log, nodeId: this.nodeId, pollMs: this.config.heartbeatInterval * 1000, sql: this.store.sql})
    }
    this.node.start({abort: (id, error) => this.pool.abandon(id, error), pump: () => this.pool.pump(), running: () => [...this.pool.running.keys()], state: () => this.state})
    this.started = true
    this.log('info', 'daemon:start', {node: this.nodeId, state_dir: state, max_concurrent_jobs: this.config.maxConcurrentJobs, output_dir: outputDir, pid: process.pid, store: this.store.path, inbox, layout: this.config.layout.kind, sandbox: this.config.sandbox ? 'bwrap' : 'none'})
    if (!this.config.sandbox) this.log('warn', 'daemon:no-sandbox', {}, 'sandbox: false: qemu reads dropped inputs WITHOUT the bubblewrap sandbox')
    this.statsTimer = setInterval(() => void this.writeStats(), 5000)
    this.intake = new IntakeLoop({
      claimable: () => this.checkBookkeeping() && this.claiming(),
      claims: this.claims,
      inbox,
      intervalMs: this.config.stabilityIntervalMs,
      log,
      outage: this.outage,
      planner: this.planner,
      pump: () => this.pool.pumpIfFree(),
      scanner: this.scanner,
      settler: this.settler,
      stability: this.stability,
      stopping: () => this.state === 'STOPPING',
    })
    await this.intake.start()
  }

  /** Resolves when the daemon has stopped or drained. */
  wait(): Promise<void> {
    return this.whenFinished
  }

  /** Stop: running jobs are cancelled and re-queued (their input stays claimed), then the daemon exits. */
  async stop(reason: string): Promise<void> {
    if (this.state === 'STOPPING') return
    this.setState('STOPPING')
    this.log('info', 'daemon:stopping', {reason, running: this.running.size})
    await this.pool.abortAll(reason)
    await this.shutdown()
  }

  /** Drain: no new job starts; the daemon exits once the running ones have finished. */
  drain(): void {
    if (this.state === 'STOPPING' || this.state === 'DRAINING') return
    this.setState('DRAINING')
    this.log('info', 'daemon:draining', {running: this.running.size})
    void this.maybeDrained()
  }

  private async maybeDrained(): Promise<void> {
    if (this.state === 'DRAINING' && this.running.size === 0) {
      this.setState('STOPPING')
      await this.shutdown()
    }
  }

  private async shutdown(): Promise<void> {
    this.stopping.abort(new H2KError('H2K_CANCELLED', 'Daemon stopping.'))
    await this.planner?.idle()
    this.intake?.close()
    clearInterval(this.statsTimer)
    this.clusterCommands?.close()
    this.pool?.close()
    await this.writeStats()
    for (const piece of this.pieces) {
      await piece.close?.().catch((error: unknown) => this.log('warn', 'piece:close-failed', {piece: piece.name}, mapForeignError(error).message))
    }
    this.node?.stop()
    await this.control?.close()
    this.store.close()
    this.bookkeeping.close()
    this.log('info', 'daemon:stopped', {processed: this.statistics.processed, failed: this.statistics.failed})
    this.logger.close()
    this.finished()
  }

  pause(): void {
    if (this.state !== 'RUNNING') return
    this.setState('PAUSED')
    this.log('info', 'daemon:paused', {running: this.running.size})
  }

  resume(): void {
    if (this.state !== 'PAUSED') return
    this.setState('RUNNING')
    this.log('info', 'daemon:resumed')
    this.pool.pump()
  }

  /** SIGHUP: apply the settings that can change live, and log what changed. */
  reload(next: DaemonConfig): void {
    const {changed, needsRestart, updated} = planReload(this.config, next)
    this.config = updated
    this.logger.setLevel(updated.logLevel)
    this.log('info', 'daemon:reloaded', {changed: changed.length > 0 ? changed.join('; ') : 'nothing', needs_restart: needsRestart.length > 0 ? needsRestart.join(',') : undefined})
    for (const piece of this.pieces) {
      try {
        piece.onReload?.(updated)
      } catch (error) {
        this.log('error', 'piece:reload-failed', {piece: piece.name}, mapForeignError(error).message)
      }
    }
    this.pool.pump()
  }

  // ---- intake ---------------------------------------------------------------------------------------

  /**
   * Whether new items may be claimed now. On a shared store (PostgreSQL) a paused or draining node claims
   * nothing: another node may take the files. On SQLite the one daemon still claims while paused (its jobs
   * wait queued), as it always did.
   */
  private claiming(): boolean {
    return this.state === 'RUNNING' || this.store.engine === 'sqlite'
  }

  // ---- the worker pool ------------------------------------------------------------------------------

  /** One more dispatch gate (dispatch-gate.ts), asked after the built-in ones (not_before, dependencies). */
  addGate(gate: DispatchGate): void {
    this.pool.addGate(gate)
  }

  /** The jobs of this daemon as the API and schedules act on them. */
  get jobService(): JobService {
    return this.pool.jobService
  }

  // ---- stats and control ----------------------------------------------------------------------------

  stats(): Record<string, unknown> {
    return this.statistics.stats()
  }

  private writeStats(): Promise<void> {
    return this.statistics.write(statsPath(this.config.stateDir))
  }

  status(): Record<string, unknown> {
    return {
      pid: process.pid,
      node_id: this.nodeId,
      state: this.state,
      running: this.running.size,
      queued: this.waiting().length,
      max_concurrent_jobs: this.config.maxConcurrentJobs,
      layout: this.config.layout.kind,
      ...(this.config.layout.kind === 'watch' ? {watch_dir: this.config.layout.root} : {layout_dir: this.config.layout.root}),
      inbox: this.config.layout.inbox,
      output_dir: this.config.outputDir,
      uptime_seconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      config: this.config.configFile ?? null,
      warnings: this.bookkeeping.warnings(),
    }
  }

  /** The answer to one control-socket command (control-server.ts parses, bounds and types the requests). */
  private controlReply(command: ControlCommand): ControlReply {
    // The socket listens from the start's first step (it guards output_dir); the store, the pool and the pieces come after.
    if (!this.started) throw new H2KError('H2K_DAEMON_NOT_RUNNING', 'The daemon is still starting (opening its store, recovering claims): ask again in a moment.')
    switch (command) {
      case 'status':
        return {reply: this.status()}
      case 'stats':
        return {reply: {stats: this.stats()}}
      case 'pause':
        this.pause()
        return {reply: {state: this.state}}
      case 'resume':
        this.resume()
        return {reply: {state: this.state}}
      case 'drain':
        return {after: () => this.drain(), reply: {running: this.running.size, state: 'DRAINING'}}
      case 'stop':
        return {after: () => void this.stop('ctl stop'), reply: {running: this.running.size, state: 'STOPPING'}}
    }
  }
}
