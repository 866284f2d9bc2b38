import {randomUUID} from 'node:crypto'
import {appendFileSync, existsSync, type FSWatcher, watch} from 'node:fs'
import {chmod, mkdir, readdir, rename, rm, stat, statfs, unlink} from 'node:fs/promises'
import {connect, createServer, type Server, type Socket} from 'node:net'
import {freemem} from 'node:os'
import {basename, dirname, extname, join} from 'node:path'
import {createInterface} from 'node:readline'

import {ERROR_CATALOG} from '../errors/catalog.js'
import {H2KError} from '../errors/h2k-error.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {settingsFromFlags} from '../job-flags.js'
import {writeFileAtomic} from '../output/commit-outputs.js'
import type {JobEvent} from '../stages/job-events.js'
import type {JobResult} from '../stages/job-result.js'
import {runJob} from '../stages/run-job.js'
import type {StageRegistry} from '../stages/stage-registry.js'
import type {JobSettings} from '../stages/stage-types.js'
import {type DaemonConfig, LIVE_KEYS} from './config.js'
import {fileKey} from './file-key.js'
import {type JobRow, JobStore, stateDir} from './store.js'

export type DaemonState = 'RUNNING' | 'PAUSED' | 'DRAINING' | 'STOPPING'

export const controlSocketPath = (outputDir: string): string => join(stateDir(outputDir), 'control.sock')
export const statsPath = (outputDir: string): string => join(stateDir(outputDir), 'stats.json')

/** Checks with identical size and mtime before a file is claimed. */
export const STABLE_CHECKS = 3

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
  settings: JobSettings
  filename: string
  size: number
  hash?: string
}

const today = (): string => new Date().toISOString().slice(0, 10)
const ignored = (name: string): boolean => name.startsWith('.') || /\.(part|tmp|crdownload|partial)$/i.test(name)
const fileType = (name: string): string => extname(name).slice(1).toLowerCase() || 'none'

/** A destination that does not exist yet: `name`, else `name.<suffix>`. */
function freeName(dir: string, name: string, suffix: string): string {
  const first = join(dir, name)
  return existsSync(first) ? join(dir, `${name}.${suffix}`) : first
}

/**
 * The daemon: an intake loop (watch layout) around the one runJob(). Files in watch_dir are claimed once
 * stable by an atomic rename into watch_dir/.processing/<job-id>/, recorded in the SQLite store, run by a
 * pool of max_concurrent_jobs workers, then archived (watch_dir/.processed/<date>/) or moved to
 * watch_dir/.errors/ with a <file>.error.json. Outputs go to output_dir/<date>/<vm>/.
 */
export class Daemon {
  private config: DaemonConfig
  private readonly registry: StageRegistry
  private store!: JobStore
  private state: DaemonState = 'RUNNING'
  private readonly tracked = new Map<string, Tracked>()
  private readonly running = new Map<string, Running>()
  private watcher?: FSWatcher
  private server?: Server
  private timer?: NodeJS.Timeout
  private statsTimer?: NodeJS.Timeout
  private ticking = false
  private readonly startedAt = new Date()
  private readonly counters = {failed: 0, processed: 0, retried: 0, totalMs: 0}
  private readonly byType = new Map<string, {processed: number; failed: number; totalMs: number}>()
  private finished!: () => void
  private readonly whenFinished = new Promise<void>((resolve) => (this.finished = resolve))

  constructor(config: DaemonConfig, registry: StageRegistry) {
    this.config = config
    this.registry = registry
  }

  private get processingDir(): string {
    return this.config.layout.processing
  }

  // ---- logging: one line per event ------------------------------------------------------------------

  log(level: 'error' | 'warn' | 'info' | 'debug', event: string, fields: Record<string, unknown> = {}, message = ''): void {
    const rank = {debug: 3, error: 0, info: 1, warn: 0}[level]
    if (rank > this.config.verbose && level !== 'error' && level !== 'warn') return
    const parts = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    const line = `${new Date().toISOString()} ${level.toUpperCase()} ${event}${parts.length > 0 ? ` ${parts.join(' ')}` : ''}${message ? ` ${message}` : ''}\n`
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
    const watchDir = this.config.layout.inbox
    await mkdir(watchDir, {recursive: true})
    await mkdir(this.processingDir, {recursive: true})
    await mkdir(stateDir(outputDir), {mode: 0o700, recursive: true})
    if (this.config.logFile) await mkdir(dirname(this.config.logFile), {recursive: true})
    await this.listen()
    this.store = JobStore.open(outputDir)
    await this.recover()
    this.log('info', 'daemon:start', {max_concurrent_jobs: this.config.maxConcurrentJobs, output_dir: outputDir, pid: process.pid, store: this.store.path, watch_dir: watchDir})
    this.watcher = watch(watchDir, (_event, name) => {
      if (name && !ignored(name)) void this.observe(name)
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

  /** Crash recovery: running jobs are re-queued (partial outputs removed); orphan claims are adopted. */
  private async recover(): Promise<void> {
    for (const row of this.store.unfinished()) {
      if (row.status !== 'running') continue
      await rm(row.output_path, {force: true, recursive: true})
      this.store.transition(row.id, 'queued', 'recovered after an unclean stop: re-queued, partial outputs removed')
      this.log('warn', 'job:recovered', {file: row.source_path, job: row.id}, 're-queued after an unclean stop')
    }
    for (const id of await readdir(this.processingDir)) {
      const dir = join(this.processingDir, id)
      const files = await readdir(dir).catch(() => [] as string[])
      const row = this.store.job(id)
      if (files.length === 0) {
        await rm(dir, {force: true, recursive: true})
        continue
      }
      if (!row) {
        // Claimed (renamed) but the daemon died before recording the job: adopt it.
        const file = join(dir, files[0]!)
        const size = (await stat(file)).size
        this.createJob(id, file, files[0]!, size)
        this.log('warn', 'job:adopted', {file: files[0], job: id}, 'claimed before an unclean stop')
      } else if (row.status === 'succeeded' || row.status === 'failed' || row.status === 'duplicate') {
        await this.settleInput(row)
      }
    }
  }

  private async listen(): Promise<void> {
    const path = controlSocketPath(this.config.outputDir)
    if (existsSync(path)) {
      const alive = await new Promise<boolean>((resolve) => {
        const probe = connect(path)
        probe.once('connect', () => {
          probe.destroy()
          resolve(true)
        })
        probe.once('error', () => resolve(false))
      })
      if (alive) throw new H2KError('H2K_DAEMON_RUNNING', `A daemon already listens on ${path}.`, {details: {socket: path}})
      await unlink(path)
    }
    const server = createServer((socket) => this.serve(socket))
    const umask = process.umask(0o177)
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(path, () => resolve())
      })
    } finally {
      process.umask(umask)
    }
    await chmod(path, 0o600)
    this.server = server
  }

  /** Stop: running jobs are cancelled and re-queued (their input stays claimed), then the daemon exits. */
  async stop(reason: string): Promise<void> {
    if (this.state === 'STOPPING') return
    this.state = 'STOPPING'
    this.log('info', 'daemon:stopping', {reason, running: this.running.size})
    for (const job of this.running.values()) job.controller.abort(new H2KError('H2K_CANCELLED', `Daemon stopping (${reason}).`))
    await Promise.all([...this.running.values()].map((j) => j.done))
    await this.shutdown()
  }

  /** Drain: no new job starts; the daemon exits once the running ones have finished. */
  drain(): void {
    if (this.state === 'STOPPING' || this.state === 'DRAINING') return
    this.state = 'DRAINING'
    this.log('info', 'daemon:draining', {running: this.running.size})
    void this.maybeDrained()
  }

  private async maybeDrained(): Promise<void> {
    if (this.state === 'DRAINING' && this.running.size === 0) {
      this.state = 'STOPPING'
      await this.shutdown()
    }
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer)
    clearInterval(this.statsTimer)
    this.watcher?.close()
    await this.writeStats()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
    await rm(controlSocketPath(this.config.outputDir), {force: true})
    this.store.close()
    this.log('info', 'daemon:stopped', {processed: this.counters.processed, failed: this.counters.failed})
    this.finished()
  }

  pause(): void {
    if (this.state !== 'RUNNING') return
    this.state = 'PAUSED'
    this.log('info', 'daemon:paused', {running: this.running.size})
  }

  resume(): void {
    if (this.state !== 'PAUSED') return
    this.state = 'RUNNING'
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
      ...(['outputDir', 'logFile'] as const).filter((k) => this.config[k] !== next[k]),
    ].filter(Boolean)
    this.config = updated
    this.log('info', 'daemon:reloaded', {changed: changed.length > 0 ? changed.join('; ') : 'nothing', needs_restart: ignoredKeys.length > 0 ? ignoredKeys.join(',') : undefined})
    this.pump()
  }

  // ---- intake: stability checks and claims ----------------------------------------------------------

  /** One check of one file; 3 identical size+mtime checks at least one interval apart make it stable. */
  private async observe(name: string): Promise<void> {
    if (this.state === 'STOPPING') return
    const path = join(this.config.layout.inbox, name)
    let info
    try {
      info = await stat(path)
    } catch {
      this.tracked.delete(name)
      return
    }
    if (!info.isFile()) return
    const now = Date.now()
    const seen = this.tracked.get(name)
    if (!seen) {
      this.tracked.set(name, {checks: 1, firstSeen: now, lastCheck: now, mtimeMs: info.mtimeMs, size: info.size, warned: false})
      this.log('debug', 'file:seen', {file: name, size: info.size})
      return
    }
    if (now - seen.lastCheck < this.config.stabilityIntervalMs * 0.9) return
    seen.lastCheck = now
    if (seen.size === info.size && seen.mtimeMs === info.mtimeMs) {
      seen.checks++
    } else {
      seen.size = info.size
      seen.mtimeMs = info.mtimeMs
      seen.checks = 1
      if (!seen.warned && now - seen.firstSeen > this.config.fileStableTimeout * 1000) {
        seen.warned = true
        this.log('warn', 'file:still-growing', {file: name, size: info.size}, `still changing after ${this.config.fileStableTimeout} s; kept pending and re-checked`)
      }
    }
    if (seen.checks >= STABLE_CHECKS) {
      this.tracked.delete(name)
      await this.claim(name, info.size)
    }
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.state === 'STOPPING') return
    this.ticking = true
    try {
      const names = (await readdir(this.config.layout.inbox)).filter((n) => !ignored(n))
      for (const name of this.tracked.keys()) if (!names.includes(name)) this.tracked.delete(name)
      await Promise.all(names.map((n) => this.observe(n)))
      this.pump()
    } catch (error) {
      this.log('error', 'intake:error', {}, mapForeignError(error).message)
    } finally {
      this.ticking = false
    }
  }

  /** Atomic claim: rename into .processing/<id>/, then record the job (recovery adopts the gap between). */
  private async claim(name: string, size: number): Promise<void> {
    const id = randomUUID().slice(0, 8)
    const dir = join(this.processingDir, id)
    const claimed = join(dir, name)
    try {
      await mkdir(dir)
      await rename(join(this.config.layout.inbox, name), claimed)
    } catch (error) {
      await rm(dir, {force: true, recursive: true})
      this.log('warn', 'file:claim-failed', {file: name}, (error as Error).message)
      return
    }
    let hash: string | undefined
    if (this.config.enableDeduplication) {
      hash = await fileKey(claimed, this.config.dedupKey)
      const earlier = this.store.findProcessed(name, size, hash)
      if (earlier) {
        const row = this.createJob(id, claimed, name, size, hash, 'duplicate', `duplicate of job ${earlier.job_id ?? '?'} (${earlier.processed_at})`)
        this.log('info', 'file:duplicate', {file: name, job: id, of_job: earlier.job_id ?? undefined})
        await this.settleInput(row)
        return
      }
    }
    const row = this.createJob(id, claimed, name, size, hash)
    this.log('info', 'job:queued', {file: name, job: id, size})
    void row
    this.pump()
  }

  private createJob(id: string, claimed: string, name: string, size: number, hash?: string, status: 'queued' | 'duplicate' = 'queued', detail?: string): JobRow {
    const vm = basename(name, extname(name)) || name
    const day = join(this.config.outputDir, today())
    const taken = new Set(this.store.unfinished().map((r) => r.output_path))
    let outputPath = join(day, vm)
    if (existsSync(outputPath) || taken.has(outputPath)) outputPath = join(day, `${vm}-${id}`)
    const settings = settingsFromFlags(claimed, {...this.config.jobDefaults, name: vm, 'output-dir': outputPath})
    const definition: Definition = {filename: name, hash, settings, size}
    return this.store.insertJob({definition_json: JSON.stringify(definition), detail, id, name: vm, output_path: outputPath, source_path: name, status, vm_path: claimed})
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
    const observer = {
      onEvent: (event: JobEvent) => {
        if (event.type === 'phase:start') {
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
      result = await runJob(definition.settings, {jobId: row.id, observer, registry: this.registry, signal: entry.controller.signal})
    } catch (error) {
      await this.failed(entry, definition, mapForeignError(error))
      return
    }
    const durationMs = Date.now() - entry.startedAt
    const done = this.store.transition(row.id, 'succeeded', `${result.outputs.length} output(s) in ${durationMs} ms`, {completed_at: new Date().toISOString(), error: null, result_json: JSON.stringify(result)})
    this.store.recordProcessed({file_hash: definition.hash ?? null, file_size: definition.size, filename: definition.filename, job_id: row.id, output_path: row.output_path})
    this.count(definition.filename, 'processed', durationMs)
    this.log('info', 'job:succeeded', {...fields, duration_ms: durationMs, output: row.output_path})
    await this.settleInput(done)
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
      setTimeout(() => this.pump(), delayMs + 10).unref()
      return
    }
    // The error file first: a job the store shows as failed always has its error file.
    await this.writeErrorFile(row, definition, error).catch((e: unknown) => this.log('error', 'job:error-file-failed', fields, mapForeignError(e).message))
    const done = this.store.transition(row.id, 'failed', `${error.code}: ${error.message}${error.permanent ? ' (permanent: not retried)' : ''}`, {
      completed_at: new Date().toISOString(),
      error: JSON.stringify(error.toJSON()),
    })
    this.count(definition.filename, 'failed', Date.now() - entry.startedAt)
    this.log('error', 'job:failed', {...fields, permanent: error.permanent}, error.message)
    await this.settleInput(done)
  }

  /** Move a finished job's input out of .processing/: archive (or remove), or into .errors/. */
  private async settleInput(row: JobRow): Promise<void> {
    const dir = dirname(row.vm_path)
    try {
      if (existsSync(row.vm_path)) {
        if (row.status === 'failed') {
          const errors = this.config.layout.failedDir(today())
          await mkdir(errors, {recursive: true})
          await rename(row.vm_path, freeName(errors, basename(row.vm_path), row.id))
        } else if (this.config.archiveProcessed || row.status === 'duplicate') {
          const archive = row.status === 'duplicate' ? this.config.layout.duplicatesDir(today()) : this.config.layout.processedDir(today())
          await mkdir(archive, {recursive: true})
          await rename(row.vm_path, freeName(archive, basename(row.vm_path), row.id))
        } else {
          await rm(row.vm_path, {force: true})
        }
      }
      await rm(dir, {force: true, recursive: true})
    } catch (error) {
      this.log('error', 'file:settle-failed', {file: row.source_path, job: row.id}, mapForeignError(error).message)
    }
  }

  private async writeErrorFile(row: JobRow, definition: Definition, error: H2KError): Promise<void> {
    const errors = this.config.layout.failedDir(today())
    await mkdir(errors, {recursive: true})
    const file = join(errors, `${definition.filename}.error.json`)
    const fs = await statfs(this.config.outputDir).catch(() => undefined)
    const record = {
      filename: definition.filename,
      filepath: join(errors, definition.filename),
      original_path: join(this.config.layout.inbox, definition.filename),
      file_size_mb: Math.round((definition.size / 1024 / 1024) * 100) / 100,
      timestamp: new Date().toISOString(),
      job_id: row.id,
      error: error.message,
      error_code: error.code,
      exit_code: error.exitCode,
      permanent: error.permanent,
      phase: error.phase ?? null,
      stage: error.stage ?? null,
      ...(this.config.verbose >= 2 && error.stack ? {stack: error.stack} : {}),
      suggestion: error.suggestions[0] ?? ERROR_CATALOG[error.code].suggestions[0] ?? null,
      suggestions: error.suggestions,
      details: error.details,
      system_info: {
        available_memory_mb: Math.round(freemem() / 1024 / 1024),
        free_disk_mb: fs ? Math.round((fs.bavail * fs.bsize) / 1024 / 1024) : null,
        node_version: process.version,
        platform: process.platform,
      },
      retry_info: {
        attempts: row.attempts,
        max_retries: this.config.retry.maxRetries,
        retry_enabled: this.config.retry.enabled,
        retried: row.attempts > 1,
        reason_not_retried: error.permanent ? 'permanent error' : row.attempts > this.config.retry.maxRetries ? 'max_retries reached' : this.config.retry.enabled ? null : 'retry disabled',
      },
    }
    await writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`)
    this.log('info', 'job:error-file', {file: definition.filename, job: row.id, path: file})
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

  stats(): Record<string, unknown> {
    const {failed, processed, retried, totalMs} = this.counters
    const finished = processed + failed
    const queued = this.store.unfinished().filter((r) => !this.running.has(r.id))
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
      queued: this.store.unfinished().filter((r) => !this.running.has(r.id)).length,
      max_concurrent_jobs: this.config.maxConcurrentJobs,
      layout: this.config.layout.kind,
      watch_dir: this.config.layout.inbox,
      output_dir: this.config.outputDir,
      uptime_seconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      config: this.config.configFile ?? null,
    }
  }

  /** Newline-delimited JSON: one request `{"command": "status"}` per line, one reply per line. */
  private serve(socket: Socket): void {
    const lines = createInterface({crlfDelay: Infinity, input: socket})
    socket.on('error', () => lines.close())
    lines.on('line', (line) => {
      if (line.trim() === '') return
      let reply: Record<string, unknown>
      let after: (() => void) | undefined
      try {
        const request = JSON.parse(line) as {command?: unknown}
        const command = String(request.command ?? '')
        switch (command) {
          case 'status':
            reply = {ok: true, ...this.status()}
            break
          case 'stats':
            reply = {ok: true, stats: this.stats()}
            break
          case 'pause':
            this.pause()
            reply = {ok: true, state: this.state}
            break
          case 'resume':
            this.resume()
            reply = {ok: true, state: this.state}
            break
          case 'drain':
            reply = {ok: true, running: this.running.size, state: 'DRAINING'}
            after = () => this.drain()
            break
          case 'stop':
            reply = {ok: true, running: this.running.size, state: 'STOPPING'}
            after = () => void this.stop('ctl stop')
            break
          default:
            reply = {error: {code: 'H2K_USAGE', message: `Unknown control command "${command}" (status, stats, pause, resume, drain, stop).`}, ok: false}
        }
        if (['pause', 'resume', 'drain', 'stop'].includes(command)) this.log('info', 'control:request', {command})
      } catch (error) {
        reply = {error: {code: 'H2K_USAGE', message: `Invalid control request: ${(error as Error).message}`}, ok: false}
      }
      socket.write(`${JSON.stringify(reply)}\n`, () => after?.())
    })
  }
}
