import {randomUUID} from 'node:crypto'
import {appendFileSync, existsSync, type FSWatcher, statSync, watch} from 'node:fs'
import {lstat, mkdir, readdir, rm, stat} from 'node:fs/promises'
import {basename, dirname, extname, join} from 'node:path'

import {ERROR_CATALOG, type ErrorCode} from '../errors/catalog.js'
import {H2KError} from '../errors/h2k-error.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {sandboxRunner} from '../sandbox/sandbox-probe.js'
import {settingsFromFlags} from '../job-flags.js'
import {manifestReport} from '../jobs/manifest-report.js'
import {writeFileAtomic} from '../output/commit-outputs.js'
import {writeNewFileAtomic} from '../fs/write-new-file.js'
import type {JobEvent} from '../stages/job-events.js'
import type {JobResult} from '../stages/job-result.js'
import {runJob} from '../stages/run-job.js'
import type {StageRegistry} from '../stages/stage-registry.js'
import type {JobSettings} from '../stages/stage-types.js'
import {ClaimGate} from './claim-gate.js'
import type {DaemonEvent, DaemonSnapshot, DaemonState, ErrorInfo, JobInfo} from './daemon-events.js'
import {type DaemonPiece, dispatch, type ReadinessCheck, startPieces} from './daemon-pieces.js'
import {BookkeepingDirs} from './bookkeeping.js'
import {claimDir, claimFiles, type ClaimRecord, listClaimFiles, readClaim, settleFiles, settleTarget, undoClaim} from './claim-files.js'
import {type DaemonConfig, LIVE_KEYS} from './config.js'
import {type ControlCommand, type ControlReply, ControlServer} from './control-server.js'
import {errorRecord, storedError} from './error-record.js'
import {fileKey} from './file-key.js'
import {checkInputAllowed} from './input-roots.js'
import {childRecordsOf, reapLeftoverChildren} from './leftover-children.js'
import {ignoredName, type IntakeItem, IntakeScanner, insideInbox, planDocument, recheckItem, symlinkRefused} from './intake-items.js'
import {outputDirName} from './output-name.js'
import {refusedError} from './refused-error.js'
import {logLine} from './log-line.js'
import {type JobRow, JobStore, stateDir} from './store.js'

export type {DaemonState} from './daemon-events.js'

export const controlSocketPath = (outputDir: string): string => join(stateDir(outputDir), 'control.sock')
export const statsPath = (outputDir: string): string => join(stateDir(outputDir), 'stats.json')

interface Tracked {
  size: number
  mtimeMs: number
  checks: number
  firstSeen: number
  lastCheck: number
  warned: boolean
}

interface Running {
  row: JobRow
  controller: AbortController
  startedAt: number
  size: number
  done: Promise<void>
  phase?: string
}

interface Definition {
  /** A dropped disk, or a job of a job config / manifest (absent in stores of older builds: a disk). */
  from?: 'disk' | 'document'
  settings: JobSettings
  filename: string
  size: number
  hash?: string
}

/** A job to record: a dropped disk (settings from the daemon's defaults) or one job of a document (its settings). */
interface NewJob {
  id: string
  intake: string
  name: string
  input: string
  filename: string
  size: number
  hash?: string
  settings?: JobSettings
}

const today = (): string => new Date().toISOString().slice(0, 10)
const fileType = (name: string): string => extname(name).slice(1).toLowerCase() || 'none'
const vmName = (file: string): string => basename(file, extname(file)) || file

/** An error as listeners see it (daemon-events.ts). */
function errorInfo(error: {code: string; message: string; phase?: string; stage?: string; suggestions?: readonly string[]}): ErrorInfo {
  const permanent = ERROR_CATALOG[error.code as ErrorCode]?.permanent ?? false
  const suggestion = error.suggestions?.[0] ?? ERROR_CATALOG[error.code as ErrorCode]?.suggestions[0]
  return {code: error.code, message: error.message, permanent, ...(error.phase ? {phase: error.phase} : {}), ...(error.stage ? {stage: error.stage} : {}), ...(suggestion ? {suggestion} : {})}
}

/** One job in a `.meta.json`. */
function jobSummary(row: JobRow): Record<string, unknown> {
  const result = row.result_json ? (JSON.parse(row.result_json) as JobResult) : undefined
  return {
    job_id: row.id,
    name: row.name,
    status: row.status,
    attempts: row.attempts,
    output_path: row.status === 'succeeded' ? row.output_path : null,
    outputs: result?.outputs.map((o) => o.path) ?? [],
    report: result?.report ?? null,
    started_at: row.started_at,
    completed_at: row.completed_at,
    ...(row.status === 'failed' ? {error: storedError(row)} : {}),
  }
}

/**
 * The daemon: an intake loop around the one runJob(), for the three layouts (layout.ts). Items of the
 * inbox (a disk with the files it names, a job config, a manifest) are claimed once stable by atomic
 * renames into <processing>/<claim-id>/, their jobs recorded in the SQLite store and run by a pool of
 * max_concurrent_jobs workers; when a claim's jobs have all finished its files move on (processed,
 * failed with <file>.error.json, duplicates) with their sidecars. Outputs go to output_dir/<date>/<vm>/.
 */
export class Daemon {
  private config: DaemonConfig
  private readonly registry: StageRegistry
  private store!: JobStore
  private state: DaemonState = 'RUNNING'
  private readonly tracked = new Map<string, Tracked>()
  private readonly running = new Map<string, Running>()
  private watcher?: FSWatcher
  private control?: ControlServer
  private timer?: NodeJS.Timeout
  private soon?: NodeJS.Timeout
  private readonly scanner: IntakeScanner
  /** Held open for writing, or incomplete by its format: not claimed yet (claim-gate.ts). */
  private readonly gate: ClaimGate
  /** The layout's own directories, held open and checked (never followed through a symlink). */
  private readonly bookkeeping: BookkeepingDirs
  /** Claims being planned (hashing for dedup); stop() aborts and awaits them. */
  private readonly planning = new Set<Promise<void>>()
  private readonly stopping = new AbortController()
  private statsTimer?: NodeJS.Timeout
  private ticking = false
  private readonly startedAt = new Date()
  private readonly counters = {failed: 0, processed: 0, retried: 0, totalMs: 0}
  private readonly byType = new Map<string, {processed: number; failed: number; totalMs: number}>()
  /** Notifications, the HTTP listener, sd_notify … (daemon-pieces.ts): they hear every job and state event. */
  private pieces: DaemonPiece[] = []
  private finished!: () => void
  private readonly whenFinished = new Promise<void>((resolve) => (this.finished = resolve))

  constructor(config: DaemonConfig, registry: StageRegistry) {
    this.config = config
    this.registry = registry
    this.scanner = new IntakeScanner(config.layout.kind, config.layout.inbox, () => this.config.jobDefaults)
    const gateSettings = () => ({inbox: this.config.layout.inbox, intervalMs: this.config.stabilityIntervalMs, timeoutS: this.config.fileStableTimeout})
    this.gate = new ClaimGate(gateSettings, (level, event, fields, message) => this.log(level, event, fields, message))
    this.bookkeeping = new BookkeepingDirs(config.layout.bookkeeping)
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

  private get processingDir(): string {
    return this.config.layout.processing
  }

  // ---- events for the pieces around the daemon (daemon-events.ts) -----------------------------------

  private emit(event: DaemonEvent): void {
    dispatch(this.pieces, event, this.log.bind(this))
  }

  private setState(state: DaemonState): void {
    this.state = state
    this.emit({at: new Date(), state, type: 'daemon:state'})
  }

  private jobInfo(row: JobRow, definition?: Definition): JobInfo {
    const size = definition?.size ?? (JSON.parse(row.definition_json) as Definition).size
    return {fileType: fileType(row.source_path), filename: row.source_path, id: row.id, intakeId: row.intake_id ?? row.id, name: row.name, sizeBytes: size}
  }

  snapshot(): DaemonSnapshot {
    const waiting = this.waiting()
    return {
      maxConcurrentJobs: this.config.maxConcurrentJobs,
      pendingFiles: this.tracked.size,
      queued: waiting.length,
      retryWaiting: waiting.filter((r) => r.status === 'retry_wait').length,
      running: this.running.size,
      startedAt: this.startedAt,
      state: this.state,
    }
  }

  /** Readiness: the store answers and takes writes, the directories are there and usable, the daemon takes new work. */
  async readiness(): Promise<ReadinessCheck[]> {
    const checks: ReadinessCheck[] = []
    try {
      this.store.ping()
      checks.push({name: 'store', ok: true})
    } catch (error) {
      checks.push({detail: mapForeignError(error).message, name: 'store', ok: false})
    }
    const problems = this.bookkeeping.check().map((c) => `${c.dir}: ${c.problem}`)
    checks.push({name: 'directories', ok: problems.length === 0 && existsSync(this.config.layout.inbox), ...(problems.length > 0 ? {detail: problems.join('; ')} : existsSync(this.config.layout.inbox) ? {} : {detail: 'the inbox is missing'})})
    checks.push({name: 'accepting', ok: this.state === 'RUNNING', ...(this.state === 'RUNNING' ? {} : {detail: this.state.toLowerCase()})})
    return checks
  }

  // ---- logging: one line per event ------------------------------------------------------------------

  log(level: 'error' | 'warn' | 'info' | 'debug', event: string, fields: Record<string, unknown> = {}, message = ''): void {
    const rank = {debug: 3, error: 0, info: 1, warn: 0}[level]
    if (rank > this.config.verbose && level !== 'error' && level !== 'warn') return
    // One event, one line: messages are folded and control characters escaped (log-line.ts).
    const line = logLine(level, event, fields, message)
    process.stderr.write(line)
    if (this.config.logFile) {
      try {
        appendFileSync(this.config.logFile, line)
      } catch {
        // the log file is best effort; stderr has the line
      }
    }
  }

  // ---- start / stop ---------------------------------------------------------------------------------

  /** Open the store, recover from a crash, listen on the control socket and start watching. */
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
    this.control = await ControlServer.listen(controlSocketPath(outputDir), {handle: (command) => this.controlReply(command), log: (level, event, fields, message) => this.log(level, event, fields, message)})
    this.store = JobStore.open(outputDir)
    await this.recover()
    this.pieces = await startPieces({
      config: this.config,
      emit: (event) => this.emit(event),
      log: this.log.bind(this),
      readiness: () => this.readiness(),
      snapshot: () => this.snapshot(),
    })
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

  /**
   * Crash recovery: running jobs are re-queued (partial outputs removed); a claim the store does not know
   * yet is planned again (or put back when its main file never arrived); a claim whose jobs all finished
   * is settled.
   */
  private async recover(): Promise<void> {
    await reapLeftoverChildren(this.config.outputDir, this.log.bind(this))
    for (const row of this.store.unfinished()) {
      if (row.status !== 'running') continue
      await rm(row.output_path, {force: true, recursive: true})
      this.store.transition(row.id, 'queued', 'recovered after an unclean stop: re-queued, partial outputs removed')
      this.log('warn', 'job:recovered', {file: row.source_path, job: row.id}, 're-queued after an unclean stop')
    }
    // A refused processing directory is not read: its claims wait until it is fixed and the daemon restarted.
    const claims = await Promise.resolve()
      .then(() => readdir(this.safe(this.processingDir)))
      .catch((error: unknown) => {
        this.log('error', 'recover:skipped', {dir: this.processingDir}, mapForeignError(error).message)
        return [] as string[]
      })
    for (const id of claims) {
      const dir = claimDir(this.processingDir, id)
      const known = this.store.jobsOfIntake(id)
      if (known.length > 0) {
        await this.maybeSettle(id)
        continue
      }
      const record = await this.claimRecord(dir, id)
      if (!record) {
        await rm(this.safe(dir), {force: true, recursive: true})
      } else if (existsSync(join(this.safe(dir), record.main))) {
        // Claimed (renamed) but the daemon died before recording the jobs: adopt it.
        this.log('warn', 'job:adopted', {file: record.main, intake: id}, 'claimed before an unclean stop')
        await this.planClaim(dir, record)
      } else {
        await undoClaim(this.config.layout.inbox, this.safe(dir), record)
        this.log('warn', 'file:unclaimed', {file: record.main, intake: id}, 'claim interrupted before its main file moved: put back')
      }
    }
  }

  /** The claim record, or one made up from the directory for claims made before records existed. */
  private async claimRecord(dir: string, id: string): Promise<ClaimRecord | undefined> {
    const record = await readClaim(this.safe(dir))
    if (record) return record
    const files = await listClaimFiles(this.safe(dir)).catch(() => [] as string[])
    if (files.length === 0) return undefined
    return {claimed_at: new Date().toISOString(), files, id, kind: 'disk', main: files[0]!}
  }

  /** Stop: running jobs are cancelled and re-queued (their input stays claimed), then the daemon exits. */
  async stop(reason: string): Promise<void> {
    if (this.state === 'STOPPING') return
    this.setState('STOPPING')
    this.log('info', 'daemon:stopping', {reason, running: this.running.size})
    for (const job of this.running.values()) job.controller.abort(new H2KError('H2K_CANCELLED', `Daemon stopping (${reason}).`))
    await Promise.all([...this.running.values()].map((j) => j.done))
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
    await Promise.all(this.planning)
    clearInterval(this.timer)
    clearTimeout(this.soon)
    clearInterval(this.statsTimer)
    this.watcher?.close()
    await this.writeStats()
    for (const piece of this.pieces) {
      await piece.close?.().catch((error: unknown) => this.log('warn', 'piece:close-failed', {piece: piece.name}, mapForeignError(error).message))
    }
    await this.control?.close()
    await rm(controlSocketPath(this.config.outputDir), {force: true})
    this.store.close()
    this.bookkeeping.close()
    this.log('info', 'daemon:stopped', {processed: this.counters.processed, failed: this.counters.failed})
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
    this.pump()
  }

  /** SIGHUP: apply the settings that can change live, and log what changed. */
  reload(next: DaemonConfig): void {
    const changed: string[] = []
    const updated = {...this.config}
    for (const key of LIVE_KEYS) {
      if (JSON.stringify(this.config[key]) !== JSON.stringify(next[key])) {
        changed.push(`${key}: ${JSON.stringify(this.config[key])} → ${JSON.stringify(next[key])}`)
        ;(updated as Record<string, unknown>)[key] = next[key]
      }
    }
    if (JSON.stringify(this.config.jobDefaults) !== JSON.stringify(next.jobDefaults)) {
      changed.push('conversion defaults (for newly claimed files)')
      updated.jobDefaults = next.jobDefaults
    }
    const ignoredKeys = [
      this.config.layout.root === next.layout.root && this.config.layout.kind === next.layout.kind ? undefined : 'layout',
      // sandbox too: turning it off is logged at start, never done silently by a reload.
      ...(['outputDir', 'logFile', 'sandbox'] as const).filter((k) => this.config[k] !== next[k]),
    ].filter(Boolean)
    this.config = updated
    this.log('info', 'daemon:reloaded', {changed: changed.length > 0 ? changed.join('; ') : 'nothing', needs_restart: ignoredKeys.length > 0 ? ignoredKeys.join(',') : undefined})
    this.pump()
  }

  // ---- intake: stability checks and claims ----------------------------------------------------------

  /**
   * One check of one file (relative to the inbox); file_stable_checks identical size+mtime checks at least
   * one interval apart make it stable. Returns undefined when the file does not exist (any more).
   */
  private async observe(rel: string): Promise<Tracked | undefined> {
    let info
    try {
      // lstat: a dropped symlink is observed as itself (and refused at intake), its target never looked at.
      info = await lstat(join(this.config.layout.inbox, rel))
    } catch {
      this.tracked.delete(rel)
      return undefined
    }
    if (!info.isFile() && !info.isSymbolicLink()) return undefined
    const now = Date.now()
    const seen = this.tracked.get(rel)
    if (!seen) {
      const fresh = {checks: 1, firstSeen: now, lastCheck: now, mtimeMs: info.mtimeMs, size: info.size, warned: false}
      this.tracked.set(rel, fresh)
      this.log('debug', 'file:seen', {file: rel, size: info.size})
      return fresh
    }
    if (now - seen.lastCheck < this.config.stabilityIntervalMs * 0.9) return seen
    seen.lastCheck = now
    if (seen.size === info.size && seen.mtimeMs === info.mtimeMs) {
      seen.checks++
    } else {
      seen.size = info.size
      seen.mtimeMs = info.mtimeMs
      seen.checks = 1
      if (!seen.warned && now - seen.firstSeen > this.config.fileStableTimeout * 1000) {
        seen.warned = true
        this.log('warn', 'file:still-growing', {file: rel, size: info.size}, `still changing after ${this.config.fileStableTimeout} s; kept pending and re-checked`)
      }
    }
    return seen
  }

  /**
   * Whether an item can be claimed: its files all stable, none held open for writing or incomplete by its
   * format (the gate); a file it names that has not arrived holds it back until file_stable_timeout (then
   * it is claimed and fails with a clear error).
   */
  private async ready(item: IntakeItem, main: Tracked): Promise<boolean> {
    const checks = this.config.fileStableChecks
    let ok = main.checks >= checks
    const missing: string[] = []
    for (const rel of item.required) {
      const t = await this.observe(rel)
      if (!t) missing.push(rel)
      else if (t.checks < checks) ok = false
    }
    for (const rel of item.optional) {
      const t = await this.observe(rel)
      if (t && t.checks < checks) ok = false
    }
    const present = [item.main, ...item.required, ...item.optional].filter((rel) => !missing.includes(rel))
    if (!ok || missing.length === 0) return ok && this.gate.admit(present, main.firstSeen)
    if (Date.now() - main.firstSeen > this.config.fileStableTimeout * 1000) return this.gate.admit(present, main.firstSeen)
    if (!main.warned) {
      main.warned = true
      this.log('info', 'file:waiting', {file: item.main, missing: missing.join(',')}, 'waiting for the files it names')
    }
    return false
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.state === 'STOPPING') return
    this.ticking = true
    try {
      const names = await this.scanner.topLevelFiles()
      const seen = new Map<string, Tracked>()
      for (const name of names) {
        const t = await this.observe(name)
        if (t) seen.set(name, t)
      }
      const items = await this.scanner.scan(seen)
      const relevant = new Set([...seen.keys(), ...items.flatMap((i) => [...i.required, ...i.optional])])
      for (const rel of this.tracked.keys()) if (!relevant.has(rel)) this.tracked.delete(rel)
      // Nothing is claimed while a bookkeeping directory is refused (a symlink, foreign-owned): nowhere safe to put it.
      const claimable = this.checkBookkeeping()
      for (const item of claimable ? items : []) {
        if ((this.state as DaemonState) === 'STOPPING') break
        const main = seen.get(item.main)
        if (main && (await this.ready(item, main))) await this.claim(item)
      }
      this.pump()
    } catch (error) {
      this.log('error', 'intake:error', {}, mapForeignError(error).message)
    } finally {
      this.ticking = false
    }
  }

  /** Atomic claim into <processing>/<id>/ (record first, main file last), then plan its jobs. */
  private async claim(found: IntakeItem): Promise<void> {
    const item = recheckItem(this.config.layout.inbox, found)
    const id = randomUUID().slice(0, 8)
    const dir = claimDir(this.processingDir, id)
    const inbox = this.config.layout.inbox
    const files = [item.main, ...[...item.required, ...item.optional].filter((rel) => existsSync(join(inbox, rel)))]
    const refused = item.kind === 'invalid' && item.error ? {code: item.error.code, details: item.error.details, message: item.error.message, suggestions: item.error.suggestions} : undefined
    const record: ClaimRecord = {claimed_at: new Date().toISOString(), files, id, kind: item.kind, main: item.main, ...(refused ? {refused} : {})}
    for (const rel of files) this.tracked.delete(rel)
    try {
      if (!(await claimFiles(inbox, this.safe(dir), record))) return
    } catch (error) {
      this.log('warn', 'file:claim-failed', {file: item.main}, mapForeignError(error).message)
      return
    }
    this.log('info', 'file:claimed', {file: item.main, files: files.length > 1 ? files.length : undefined, intake: id, kind: item.kind})
    // Planning may hash a large disk (content dedup): it runs beside the intake loop, never blocking other claims.
    const planning = this.planClaim(dir, record)
      .catch((error: unknown) => {
        const mapped = mapForeignError(error)
        if (mapped.code === 'H2K_CANCELLED') this.log('info', 'file:plan-deferred', {file: item.main, intake: id}, 'daemon stopping; planned on the next start')
        else this.log('error', 'file:plan-failed', {file: item.main, intake: id}, `${mapped.message} (planned again on the next start)`)
      })
      .finally(() => {
        this.planning.delete(planning)
        this.pump()
      })
    this.planning.add(planning)
  }

  /** The jobs of a claim: one per disk, one per job of a config or manifest; a document that cannot run fails at once. */
  private async planClaim(dir: string, record: ClaimRecord): Promise<void> {
    const {id, main} = record
    const path = join(dir, main)
    const inbox = this.config.layout.inbox
    let jobs: NewJob[]
    try {
      // The dropped file itself must be a regular file (lstat): a symlink is refused before anything opens it.
      if ((await lstat(path)).isSymbolicLink()) throw symlinkRefused(main)
      if (record.refused) throw refusedError(record.refused)
      if (record.kind === 'disk') {
        await checkInputAllowed(path, dir, this.config.allowedInputDirs)
        jobs = [{filename: main, id, input: path, intake: id, name: vmName(main), size: (await stat(path)).size}]
      } else {
        const plan = await planDocument(this.config.layout.kind, path, inbox, this.config.jobDefaults)
        jobs = []
        for (const [index, job] of plan.jobs.entries()) {
          // Inputs that travelled with the document now sit in its claim directory.
          const rel = insideInbox(inbox, job.settings.input)
          const input = rel === undefined ? job.settings.input : join(dir, rel)
          await checkInputAllowed(input, dir, this.config.allowedInputDirs)
          const size = existsSync(input) ? statSync(input).size : 0
          jobs.push({filename: basename(input), id: plan.jobs.length === 1 ? id : `${id}-${index + 1}`, input, intake: id, name: job.name, settings: job.settings, size})
        }
      }
    } catch (error) {
      const mapped = mapForeignError(error)
      if (mapped.code === 'H2K_CANCELLED') throw mapped
      // lstat: a refused symlink's target size is never recorded.
      const info = await lstat(path).catch(() => undefined)
      const size = info?.isFile() ? info.size : 0
      const row = this.createJob({filename: main, id, input: path, intake: id, name: vmName(main), size}, 'failed', `${mapped.code}: ${mapped.message}`)
      this.store.transition(row.id, 'failed', `cannot run: ${mapped.code}${mapped.permanent ? ' (permanent: not retried)' : ''}`, {completed_at: new Date().toISOString(), error: JSON.stringify(this.storedError(mapped))})
      this.count(main, 'failed', 0)
      this.log('error', 'job:failed', {code: mapped.code, file: main, job: row.id, permanent: mapped.permanent}, mapped.message)
      this.emit({at: new Date(), attempt: 1, durationMs: 0, error: errorInfo(mapped), job: this.jobInfo(row), maxRetries: this.config.retry.maxRetries, type: 'job:failed'})
      await this.maybeSettle(id)
      return
    }
    if (record.kind === 'disk' && this.config.enableDeduplication) {
      const job = jobs[0]!
      job.hash = await fileKey(path, this.config.dedupKey, this.stopping.signal)
      const earlier = this.store.findProcessed(main, job.size, job.hash)
      if (earlier) {
        const row = this.createJob(job, 'duplicate', `duplicate of job ${earlier.job_id ?? '?'} (${earlier.processed_at})`)
        this.log('info', 'file:duplicate', {file: main, job: id, of_job: earlier.job_id ?? undefined})
        this.emit({at: new Date(), job: this.jobInfo(row), type: 'job:duplicate', ...(earlier.job_id ? {ofJob: earlier.job_id} : {})})
        await this.maybeSettle(id)
        return
      }
    }
    for (const job of jobs) {
      const row = this.createJob(job)
      this.emit({at: new Date(), job: this.jobInfo(row), type: 'job:queued'})
      this.log('info', 'job:queued', {file: main, job: job.id, name: job.name === vmName(main) ? undefined : job.name, size: job.size})
    }
  }

  private createJob(job: NewJob, status: 'queued' | 'duplicate' | 'failed' = 'queued', detail?: string): JobRow {
    const day = join(this.config.outputDir, today())
    const taken = new Set(this.store.unfinished().map((r) => r.output_path))
    // Names come from dropped file names and documents: control characters never reach a directory name.
    const dirName = outputDirName(job.name, job.id)
    let outputPath = join(day, dirName)
    if (existsSync(outputPath) || taken.has(outputPath)) outputPath = join(day, `${dirName}-${job.id}`)
    // The daemon owns where outputs go (output_dir/<date>/<vm>/): it clears that directory before every attempt.
    // Whether qemu is sandboxed is the daemon's configuration, never a dropped document's `sandbox` key.
    const settings: JobSettings = job.settings
      ? {...job.settings, input: job.input, name: job.settings.name ?? job.name, outputDir: outputPath, sandbox: this.config.sandbox, workDir: this.config.workDir}
      : settingsFromFlags(job.input, {...this.config.jobDefaults, name: job.name, 'output-dir': outputPath, sandbox: this.config.sandbox, 'work-dir': this.config.workDir})
    const definition: Definition = {filename: job.filename, from: job.settings ? 'document' : 'disk', hash: job.hash, settings, size: job.size}
    return this.store.insertJob({
      definition_json: JSON.stringify(definition),
      detail,
      id: job.id,
      intake_id: job.intake,
      name: job.name,
      output_path: outputPath,
      source_path: job.filename,
      status: status === 'failed' ? 'queued' : status,
      vm_path: job.input,
    })
  }

  // ---- the worker pool ------------------------------------------------------------------------------

  /** Start due jobs while fewer than max_concurrent_jobs run (never while paused, draining or stopping). */
  private pump(): void {
    if (this.state !== 'RUNNING') return
    if (this.running.size >= this.config.maxConcurrentJobs) return
    const now = Date.now()
    const due = this.store.unfinished().filter((r) => !this.running.has(r.id) && (r.status === 'queued' || (r.status === 'retry_wait' && (r.next_attempt_at ?? 0) <= now)))
    for (const row of due) {
      if (this.running.size >= this.config.maxConcurrentJobs) break
      this.launch(row)
    }
  }

  private launch(row: JobRow): void {
    const controller = new AbortController()
    const definition = JSON.parse(row.definition_json) as Definition
    const entry: Running = {controller, done: Promise.resolve(), row, size: definition.size, startedAt: Date.now()}
    this.running.set(row.id, entry)
    entry.done = this.execute(entry, definition)
      .catch((error: unknown) => this.log('error', 'job:internal-error', {file: row.source_path, job: row.id}, `${mapForeignError(error).message} (the job stays in the store and is retried on the next start)`))
      .finally(() => {
      this.running.delete(row.id)
      void this.writeStats()
      if (this.state === 'DRAINING') void this.maybeDrained()
      else this.pump()
    })
  }

  private async execute(entry: Running, definition: Definition): Promise<void> {
    const attempt = entry.row.attempts + 1
    const row = this.store.transition(entry.row.id, 'running', `attempt ${attempt}`, {attempts: attempt, next_attempt_at: null, started_at: new Date().toISOString()})
    entry.row = row
    const fields = {file: row.source_path, job: row.id}
    this.log('info', 'job:start', {...fields, attempt})
    const job = this.jobInfo(row, definition)
    this.emit({at: new Date(), attempt, job, type: 'job:started'})
    const observer = {
      onEvent: (event: JobEvent) => {
        if (event.type === 'progress' || event.type === 'stage:start') {
          this.emit({at: new Date(), job, phase: event.phase, stage: event.stage, type: 'job:progress'})
        } else if (event.type === 'stage:end') {
          this.emit({at: new Date(), durationMs: event.durationMs, job, kind: event.phase, stage: event.stage, status: event.status, type: 'job:stage'})
        }
        if (event.type === 'phase:start') {
          this.emit({at: new Date(), job, phase: event.phase, type: 'job:phase'})
          entry.phase = event.phase
          this.store.setProgress(row.id, {phase: event.phase, stages: event.stages})
          this.log('debug', 'job:phase', {...fields, phase: event.phase})
        } else if (event.type === 'warning') {
          this.log('warn', 'job:warning', {...fields, code: event.warning.code, phase: entry.phase}, event.warning.message)
        }
      },
    }
    let result: JobResult
    try {
      // The job owns its output directory: whatever an earlier attempt left there goes first.
      await rm(row.output_path, {force: true, recursive: true}).catch((error: unknown) => {
        throw new H2KError('H2K_OUTPUT_FAILED', `Cannot clear the job's output directory ${row.output_path}: ${(error as Error).message}`, {cause: error, phase: 'setup'})
      })
      result = await runJob(definition.settings, {childRecords: childRecordsOf(this.config.outputDir), jobId: row.id, observer, registry: this.registry, signal: entry.controller.signal})
    } catch (error) {
      await this.failed(entry, definition, mapForeignError(error))
      return
    }
    const durationMs = Date.now() - entry.startedAt
    const previous = row.attempts > 1 && row.error ? errorInfo(storedError(row)) : undefined
    const done = this.store.transition(row.id, 'succeeded', `${result.outputs.length} output(s) in ${durationMs} ms`, {completed_at: new Date().toISOString(), error: null, result_json: JSON.stringify(result)})
    // Only dropped disks count for dedup; a job config or manifest is an explicit request.
    if (definition.from !== 'document') {
      this.store.recordProcessed({file_hash: definition.hash ?? null, file_size: definition.size, filename: definition.filename, job_id: row.id, output_path: row.output_path})
    }
    this.count(definition.filename, 'processed', durationMs)
    this.log('info', 'job:succeeded', {...fields, duration_ms: durationMs, output: row.output_path})
    const outputBytes = result.outputs.reduce((sum, o) => sum + o.bytesOnDisk, 0)
    this.emit({at: new Date(), attempt, durationMs, job, maxRetries: this.config.retry.maxRetries, outputBytes, outputPath: row.output_path, type: 'job:succeeded', ...(previous ? {previousError: previous} : {})})
    void done
    await this.maybeSettle(row.intake_id ?? row.id)
  }

  private async failed(entry: Running, definition: Definition, error: H2KError): Promise<void> {
    const row = entry.row
    const fields = {code: error.code, file: row.source_path, job: row.id, phase: error.phase}
    if (error.code === 'H2K_CANCELLED' && this.state === 'STOPPING') {
      this.store.transition(row.id, 'queued', 'daemon stopped: cancelled and re-queued', {attempts: row.attempts - 1})
      this.log('info', 'job:requeued', fields, 'cancelled by stop; will run again on the next start')
      return
    }
    // Nothing of a failed attempt is kept: the job owns its output directory.
    await rm(row.output_path, {force: true, recursive: true}).catch(() => {})
    const retry = this.config.retry
    if (retry.enabled && !error.permanent && row.attempts <= retry.maxRetries) {
      const delayMs = Math.round(retry.retryDelay * retry.backoffMultiplier ** (row.attempts - 1) * 1000)
      this.store.transition(row.id, 'retry_wait', `${error.code}: ${error.message} — retry ${row.attempts}/${retry.maxRetries} in ${delayMs} ms`, {
        error: JSON.stringify(error.toJSON()),
        next_attempt_at: Date.now() + delayMs,
      })
      this.counters.retried++
      this.log('warn', 'job:retry', {...fields, delay_ms: delayMs, retry: `${row.attempts}/${retry.maxRetries}`}, error.message)
      this.emit({at: new Date(), attempt: row.attempts, delayMs, error: errorInfo(error), job: this.jobInfo(row, definition), maxRetries: retry.maxRetries, nextRetryAt: new Date(Date.now() + delayMs), type: 'job:retry'})
      setTimeout(() => this.pump(), delayMs + 10).unref()
      return
    }
    const done = this.store.transition(row.id, 'failed', `${error.code}: ${error.message}${error.permanent ? ' (permanent: not retried)' : ''}`, {
      completed_at: new Date().toISOString(),
      error: JSON.stringify(this.storedError(error)),
    })
    this.count(definition.filename, 'failed', Date.now() - entry.startedAt)
    this.log('error', 'job:failed', {...fields, permanent: error.permanent}, error.message)
    this.emit({at: new Date(), attempt: row.attempts, durationMs: Date.now() - entry.startedAt, error: errorInfo(error), job: this.jobInfo(done, definition), maxRetries: retry.maxRetries, type: 'job:failed'})
    await this.maybeSettle(done.intake_id ?? done.id)
  }

  /** The error as the store keeps it (with the stack when verbose >= 2, for the error file). */
  private storedError(error: H2KError): Record<string, unknown> {
    return {...error.toJSON(), ...(this.config.verbose >= 2 && error.stack ? {stack: error.stack} : {})}
  }

  // ---- settling a claim: its files to processed/, failed/ (with the error file) or duplicates/ ------------

  private readonly settling = new Set<string>()

  /** Once every job of a claim has finished, move its files on and write its sidecars; idempotent, resumable. */
  private async maybeSettle(intakeId: string): Promise<void> {
    if (this.settling.has(intakeId)) return
    const jobs = this.store.jobsOfIntake(intakeId)
    if (jobs.length === 0 || jobs.some((j) => j.status === 'queued' || j.status === 'running' || j.status === 'retry_wait')) return
    const dir = claimDir(this.processingDir, intakeId)
    let present: boolean
    try {
      present = existsSync(this.safe(dir))
    } catch (error) {
      this.log('error', 'file:settle-deferred', {intake: intakeId}, `${mapForeignError(error).message} (settled once it is fixed, on the next start)`)
      return
    }
    if (!present) return
    this.settling.add(intakeId)
    try {
      const record = await this.claimRecord(dir, intakeId)
      if (!record) {
        await rm(this.safe(dir), {force: true, recursive: true})
        return
      }
      await this.settle(dir, record, jobs)
    } catch (error) {
      this.log('error', 'file:settle-failed', {file: jobs[0]!.source_path, intake: intakeId}, mapForeignError(error).message)
    } finally {
      this.settling.delete(intakeId)
    }
  }

  private async settle(dir: string, record: ClaimRecord, jobs: JobRow[]): Promise<void> {
    const {layout} = this.config
    const failed = jobs.filter((j) => j.status === 'failed')
    const outcome = failed.length > 0 ? 'failed' : jobs.every((j) => j.status === 'duplicate') ? 'duplicate' : 'succeeded'
    const date = today()
    const dated = outcome === 'failed' ? layout.failedDir(date) : outcome === 'duplicate' ? layout.duplicatesDir(date) : layout.processedDir(date)
    const keep = outcome !== 'succeeded' || layout.kind !== 'watch' || this.config.archiveProcessed
    // Every look and move goes through the held bookkeeping descriptors (bookkeeping.ts); a refused target throws before anything moves.
    const target = keep ? await settleTarget(this.safe(dir), record, dated, (real) => this.safe(real)) : undefined
    if (target) {
      await mkdir(this.safe(target), {mode: 0o750, recursive: true})
      // Sidecars first: a claim that left processing/ always has them.
      for (const [name, content] of await this.sidecars(record, jobs, failed, outcome, target)) {
        await writeNewFileAtomic(this.safe(join(target, name)), `${JSON.stringify(content, null, 2)}\n`)
        this.log('info', name.endsWith('.error.json') ? 'job:error-file' : 'file:sidecar', {intake: record.id, path: join(target, name)})
      }
    }
    await settleFiles(this.safe(dir), record, target === undefined ? undefined : this.safe(target))
    this.log('info', `file:${outcome === 'succeeded' ? 'processed' : outcome}`, {file: record.main, intake: record.id, to: target ?? 'removed'})
  }

  /** The files written next to a settled claim: `.error.json`, `.meta.json` (workflow layouts), `.report.json` (manifests). */
  private async sidecars(record: ClaimRecord, jobs: JobRow[], failed: JobRow[], outcome: string, target: string): Promise<Array<[string, unknown]>> {
    const {layout} = this.config
    const out: Array<[string, unknown]> = []
    const size = (JSON.parse(jobs[0]!.definition_json) as Definition).size
    if (failed.length > 0) {
      const others = jobs.filter((j) => j.status !== 'failed')
      const input = {dir: target, failed, files: record.files, inbox: layout.inbox, layout: layout.kind, others, outputDir: this.config.outputDir, retry: this.config.retry, size, verbose: this.config.verbose}
      out.push([`${record.main}.error.json`, await errorRecord(input)])
    }
    if (layout.kind !== 'watch') {
      out.push([
        `${record.main}.meta.json`,
        {
          filename: record.main,
          files: record.files,
          kind: record.kind,
          claim_id: record.id,
          layout: layout.kind,
          status: outcome,
          claimed_at: record.claimed_at,
          settled_at: new Date().toISOString(),
          jobs: jobs.map((j) => jobSummary(j)),
        },
      ])
    }
    if (record.kind === 'manifest' || layout.kind === 'manifest-workflow') {
      const job = jobs[0]!
      const started = job.started_at ?? job.created_at
      const error = job.status === 'failed' ? storedError(job) : undefined
      const report = manifestReport({
        durationMs: Date.parse(job.completed_at ?? new Date().toISOString()) - Date.parse(started),
        error: error as Record<string, unknown> | undefined,
        jobId: job.id,
        manifest: join(target, record.main),
        result: job.result_json ? (JSON.parse(job.result_json) as JobResult) : undefined,
        startedAt: started,
        status: job.status,
      })
      out.push([`${basename(record.main, extname(record.main))}.report.json`, report])
    }
    return out
  }

  // ---- stats and control ----------------------------------------------------------------------------

  private count(filename: string, kind: 'processed' | 'failed', ms: number): void {
    this.counters[kind]++
    this.counters.totalMs += ms
    const type = fileType(filename)
    const t = this.byType.get(type) ?? {failed: 0, processed: 0, totalMs: 0}
    t[kind]++
    t.totalMs += ms
    this.byType.set(type, t)
  }

  /** Jobs recorded but not running: queued, or waiting for a retry. */
  private waiting(): JobRow[] {
    return this.store.unfinished().filter((r) => !this.running.has(r.id))
  }

  stats(): Record<string, unknown> {
    const {failed, processed, retried, totalMs} = this.counters
    const finished = processed + failed
    const queued = this.waiting()
    return {
      start_time: this.startedAt.toISOString(),
      uptime_seconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      state: this.state,
      processed,
      failed,
      retried,
      success_rate: finished === 0 ? null : Math.round((processed / finished) * 1000) / 10,
      average_processing_time_seconds: finished === 0 ? null : Math.round(totalMs / finished) / 1000,
      queue_depth: queued.length,
      pending_files: this.tracked.size,
      by_file_type: Object.fromEntries(
        [...this.byType].map(([type, t]) => [
          type,
          {failed: t.failed, processed: t.processed, success_rate: Math.round((t.processed / (t.processed + t.failed)) * 1000) / 10, average_time_seconds: Math.round(t.totalMs / (t.processed + t.failed)) / 1000},
        ]),
      ),
      current_jobs: [...this.running.values()].map((j) => ({
        file: j.row.source_path,
        job_id: j.row.id,
        phase: j.phase ?? null,
        retry_count: j.row.attempts - 1,
        size_mb: Math.round((j.size / 1024 / 1024) * 100) / 100,
        start_time: new Date(j.startedAt).toISOString(),
        status: 'running',
      })),
      updated_at: new Date().toISOString(),
    }
  }

  private statsWrite: Promise<void> = Promise.resolve()

  /** Serialized: two writers of the same temporary file would race. */
  private writeStats(): Promise<void> {
    this.statsWrite = this.statsWrite.then(async () => {
      try {
        await writeFileAtomic(statsPath(this.config.outputDir), `${JSON.stringify(this.stats(), null, 2)}\n`)
      } catch (error) {
        this.log('warn', 'stats:write-failed', {}, (error as Error).message)
      }
    })
    return this.statsWrite
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
