import {randomBytes} from 'node:crypto'
import {type FSWatcher, watch} from 'node:fs'
import {mkdir, rm} from 'node:fs/promises'
import {hostname} from 'node:os'
import {dirname, join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {sandboxRunner} from '../sandbox/sandbox-probe.js'
import type {StageRegistry} from '../stages/stage-registry.js'
import {BookkeepingDirs} from './bookkeeping.js'
import {ClaimGate} from './claim-gate.js'
import {ClaimPlanner} from './claim-planner.js'
import type {DaemonConfig} from './config.js'
import {type ControlCommand, type ControlReply, ControlServer} from './control-server.js'
import type {DaemonEvent, DaemonSnapshot, DaemonState} from './daemon-events.js'
import {type DaemonPiece, dispatch, type ReadinessCheck, startPieces} from './daemon-pieces.js'
import {currentJobs} from './current-jobs.js'
import {DaemonStats} from './daemon-stats.js'
import {ignoredName, IntakeScanner} from './intake-items.js'
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
import {StabilityTracker, type Tracked} from './stability.js'
import {controlSocketPath} from './state-paths.js'
import {type JobRow, JobStore, stateDir, storePath} from './store.js'
import {storeTarget} from '../store/store-target.js'
import {WorkerPool} from './worker-pool.js'

export type {DaemonState} from './daemon-events.js'

export {controlSocketPath}
export const statsPath = (outputDir: string): string => join(stateDir(outputDir), 'stats.json')

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
  /**
   * This daemon among those sharing a store: the notification outbox rows it writes and delivers. Until the
   * cluster part resolves a kept node id, one per process (a SQLite outbox adopts its earlier runs' rows).
   */
  private readonly nodeId = `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 55) || 'node'}-${randomBytes(4).toString('hex')}`
  private store!: JobStore
  private state: DaemonState = 'RUNNING'
  private watcher?: FSWatcher
  private control?: ControlServer
  private timer?: NodeJS.Timeout
  private soon?: NodeJS.Timeout
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
  private ticking = false
  /** When the last intake scan ended (the sd_notify watchdog pings only while intake is alive). */
  private lastTickAt?: Date
  private readonly startedAt = new Date()
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
      ...(this.lastTickAt ? {intakeTickAt: this.lastTickAt} : {}),
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
    await mkdir(stateDir(outputDir), {mode: 0o700, recursive: true})
    if (this.config.logFile) await mkdir(dirname(this.config.logFile), {recursive: true})
    // A daemon that would fail every job (no bwrap, no user namespaces) refuses to start instead.
    if (this.config.sandbox) await sandboxRunner()
    const log = this.log.bind(this)
    this.control = await ControlServer.listen(controlSocketPath(outputDir), {handle: (command) => this.controlReply(command), log})
    this.store = JobStore.open(storeTarget(storePath(outputDir), this.config.store))
    // Each job's own log lines (GET /api/v1/jobs/{id}/log): a copy of the lines naming it, from the one log writer.
    const jobLog = new JobLogStore(this.store.sql)
    this.logger.addTap(jobLogTap(jobLog))
    const config = () => this.config
    const emit = (event: DaemonEvent) => this.emit(event)
    this.settler = new ClaimSettler(this.store, config, (real) => this.safe(real), log)
    const settle = (intakeId: string) => this.settler.maybeSettle(intakeId)
    this.planner = new ClaimPlanner({config, emit, log, planned: () => this.pool.pump(), safe: (real) => this.safe(real), settle, stopping: this.stopping.signal, store: this.store})
    const settleJob = (row: JobRow) => this.settler.settleJob(row)
    const jobEnded = () => {
      void this.writeStats()
      if (this.state === 'DRAINING') void this.maybeDrained()
      else this.pool.pump()
    }
    this.pool = new WorkerPool({clock: this.clock, config, emit, jobEnded, log, registry: this.registry, settle: settleJob, state: () => this.state, store: this.store})
    await reapLeftoverChildren(outputDir, log)
    await recoverClaims({layout: this.config.layout, log, planner: this.planner, safe: (real) => this.safe(real), settler: this.settler, store: this.store})
    // A parent that ended badly just before a crash: its dependents are skipped now.
    for (const row of sweepSkipped({emit, log, store: this.store})) await settleJob(row)
    try {
      this.pieces = await startPieces({addGate: (gate) => this.addGate(gate), apiRoutes: [], clock: this.clock, config: this.config, emit, jobLog, jobPolicy: (id) => this.pool.policyOf(id), jobs: this.pool.jobService, log, nodeId: this.nodeId, readiness: () => this.readiness(), snapshot: () => this.snapshot(), sql: this.store.sql})
    } catch (error) {
      // A listener that cannot listen, a token missing: nothing of this start is left behind (socket, store).
      await this.control.close()
      await rm(controlSocketPath(outputDir), {force: true})
      this.store.close()
      this.bookkeeping.close()
      throw error
    }
    this.log('info', 'daemon:start', {max_concurrent_jobs: this.config.maxConcurrentJobs, output_dir: outputDir, pid: process.pid, store: this.store.path, inbox, layout: this.config.layout.kind, sandbox: this.config.sandbox ? 'bwrap' : 'none'})
    if (!this.config.sandbox) this.log('warn', 'daemon:no-sandbox', {}, 'sandbox: false: qemu reads dropped inputs WITHOUT the bubblewrap sandbox')
    // fs events only bring the next scan forward; the periodic scan is the safety net (and counts the checks).
    this.watcher = watch(inbox, (_event, name) => {
      if (!name || ignoredName(name) || this.soon) return
      this.soon = setTimeout(() => {
        this.soon = undefined
        void this.tick()
      }, 50)
    })
    this.watcher.on('error', (error) => this.log('warn', 'watch:error', {}, error.message))
    this.timer = setInterval(() => void this.tick(), this.config.stabilityIntervalMs)
    this.statsTimer = setInterval(() => void this.writeStats(), 5000)
    await this.tick()
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
    clearInterval(this.timer)
    clearTimeout(this.soon)
    clearInterval(this.statsTimer)
    this.pool?.close()
    this.watcher?.close()
    await this.writeStats()
    for (const piece of this.pieces) {
      await piece.close?.().catch((error: unknown) => this.log('warn', 'piece:close-failed', {piece: piece.name}, mapForeignError(error).message))
    }
    await this.control?.close()
    await rm(controlSocketPath(this.config.outputDir), {force: true})
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

  private async tick(): Promise<void> {
    if (this.ticking || this.state === 'STOPPING') return
    this.ticking = true
    try {
      const names = await this.scanner.topLevelFiles()
      const seen = new Map<string, Tracked>()
      for (const name of names) {
        const t = await this.stability.observe(name)
        if (t) seen.set(name, t)
      }
      const items = await this.scanner.scan(seen)
      this.stability.retain(new Set([...seen.keys(), ...items.flatMap((i) => [...i.required, ...i.optional])]))
      // Nothing is claimed while a bookkeeping directory is refused (a symlink, foreign-owned): nowhere safe to put it.
      const claimable = this.checkBookkeeping()
      for (const item of claimable ? items : []) {
        if ((this.state as DaemonState) === 'STOPPING') break
        const main = seen.get(item.main)
        if (main && (await this.stability.ready(item, main))) {
          for (const rel of await this.planner.claim(item)) this.stability.forget(rel)
        }
      }
      this.pool.pump()
    } catch (error) {
      this.log('error', 'intake:error', {}, mapForeignError(error).message)
    } finally {
      this.ticking = false
      this.lastTickAt = new Date()
    }
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
    return this.statistics.write(statsPath(this.config.outputDir))
  }

  status(): Record<string, unknown> {
    return {
      pid: process.pid,
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
