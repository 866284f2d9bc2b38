import {randomUUID} from 'node:crypto'
import {existsSync, statSync} from 'node:fs'
import {lstat, stat} from 'node:fs/promises'
import {basename, join} from 'node:path'

import {mapForeignError} from '../errors/map-foreign-error.js'
import {claimDir, claimFiles, type ClaimRecord} from './claim-files.js'
import type {DaemonConfig} from './config.js'
import type {DaemonEvent} from './daemon-events.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import {fileKey} from './file-key.js'
import {checkInputAllowed} from './input-roots.js'
import {type IntakeItem, insideInbox, planDocument, recheckItem, symlinkRefused} from './intake-items.js'
import {definitionFor, type NewJob, vmName} from './job-definition.js'
import {errorInfo, errorToStore, jobInfo} from './job-info.js'
import {jobOutputPath} from './job-output-path.js'
import {refusedError} from './refused-error.js'
import type {JobRow, JobStore} from './store.js'

/** What the planner needs from the daemon. */
export interface PlannerContext {
  store: JobStore
  config: () => DaemonConfig
  /** A bookkeeping path as the held descriptors reach it (bookkeeping.ts). */
  safe: (real: string) => string
  log: DaemonLogFn
  emit: (event: DaemonEvent) => void
  /** Settle a claim whose jobs have all finished. */
  settle: (intakeId: string) => Promise<void>
  /** Called when a claim's jobs are recorded (start what is due). */
  planned: () => void
  /** Aborted when the daemon stops (hashing for dedup stops with it). */
  stopping: AbortSignal
}

/**
 * Claims and their jobs: an item is claimed by atomic renames into <processing>/<id>/ (record first, main
 * file last), then planned — one job per disk, one per job of a config or manifest; a document that cannot
 * run fails at once; a duplicate is recorded as such.
 */
export class ClaimPlanner {
  /** Claims being planned (hashing for dedup); the daemon awaits them when it stops. */
  private readonly planning = new Set<Promise<void>>()

  constructor(private readonly ctx: PlannerContext) {}

  /** Resolves once every planning in progress has ended. */
  async idle(): Promise<void> {
    await Promise.all(this.planning)
  }

  /** Claim an item (its files leave the inbox); planning runs beside the intake loop. Returns the claimed files. */
  async claim(found: IntakeItem): Promise<string[]> {
    const {config, log, safe} = this.ctx
    const inbox = config().layout.inbox
    const item = recheckItem(inbox, found)
    const id = randomUUID().slice(0, 8)
    const dir = claimDir(config().layout.processing, id)
    const files = [item.main, ...[...item.required, ...item.optional].filter((rel) => existsSync(join(inbox, rel)))]
    const refused = item.kind === 'invalid' && item.error ? {code: item.error.code, details: item.error.details, message: item.error.message, suggestions: item.error.suggestions} : undefined
    const record: ClaimRecord = {claimed_at: new Date().toISOString(), files, id, kind: item.kind, main: item.main, ...(refused ? {refused} : {})}
    try {
      if (!(await claimFiles(inbox, safe(dir), record))) return files
    } catch (error) {
      log('warn', 'file:claim-failed', {file: item.main}, mapForeignError(error).message)
      return files
    }
    log('info', 'file:claimed', {file: item.main, files: files.length > 1 ? files.length : undefined, intake: id, kind: item.kind})
    // Planning may hash a large disk (content dedup): it runs beside the intake loop, never blocking other claims.
    const planning = this.plan(dir, record)
      .catch((error: unknown) => {
        const mapped = mapForeignError(error)
        if (mapped.code === 'H2K_CANCELLED') log('info', 'file:plan-deferred', {file: item.main, intake: id}, 'daemon stopping; planned on the next start')
        else log('error', 'file:plan-failed', {file: item.main, intake: id}, `${mapped.message} (planned again on the next start)`)
      })
      .finally(() => {
        this.planning.delete(planning)
        this.ctx.planned()
      })
    this.planning.add(planning)
    return files
  }

  /** The jobs of a claim (also for claims adopted at recovery). */
  async plan(dir: string, record: ClaimRecord): Promise<void> {
    const {config, log, emit, store} = this.ctx
    const cfg = config()
    const {id, main} = record
    const path = join(dir, main)
    const inbox = cfg.layout.inbox
    let jobs: NewJob[]
    try {
      // The dropped file itself must be a regular file (lstat): a symlink is refused before anything opens it.
      if ((await lstat(path)).isSymbolicLink()) throw symlinkRefused(main)
      if (record.refused) throw refusedError(record.refused)
      if (record.kind === 'disk') {
        await checkInputAllowed(path, dir, cfg.allowedInputDirs)
        jobs = [{filename: main, id, input: path, intake: id, name: vmName(main), size: (await stat(path)).size}]
      } else {
        const plan = await planDocument(cfg.layout.kind, path, inbox, cfg.jobDefaults)
        jobs = []
        for (const [index, job] of plan.jobs.entries()) {
          // Inputs that travelled with the document now sit in its claim directory.
          const rel = insideInbox(inbox, job.settings.input)
          const input = rel === undefined ? job.settings.input : join(dir, rel)
          await checkInputAllowed(input, dir, cfg.allowedInputDirs)
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
      store.transition(row.id, 'failed', `cannot run: ${mapped.code}${mapped.permanent ? ' (permanent: not retried)' : ''}`, {completed_at: new Date().toISOString(), error: JSON.stringify(errorToStore(mapped, cfg.verbose))})
      log('error', 'job:failed', {code: mapped.code, file: main, job: row.id, permanent: mapped.permanent}, mapped.message)
      emit({at: new Date(), attempt: 1, durationMs: 0, error: errorInfo(mapped), job: jobInfo(row), maxRetries: cfg.retry.maxRetries, retrying: false, type: 'job:failed'})
      await this.ctx.settle(id)
      return
    }
    if (record.kind === 'disk' && cfg.enableDeduplication) {
      const job = jobs[0]!
      job.hash = await fileKey(path, cfg.dedupKey, this.ctx.stopping)
      const earlier = store.findProcessed(main, job.size, job.hash)
      if (earlier) {
        const row = this.createJob(job, 'duplicate', `duplicate of job ${earlier.job_id ?? '?'} (${earlier.processed_at})`)
        log('info', 'file:duplicate', {file: main, job: id, of_job: earlier.job_id ?? undefined})
        emit({at: new Date(), job: jobInfo(row), type: 'job:duplicate', ...(earlier.job_id ? {ofJob: earlier.job_id} : {})})
        await this.ctx.settle(id)
        return
      }
    }
    for (const job of jobs) {
      const row = this.createJob(job)
      emit({at: new Date(), job: jobInfo(row), type: 'job:queued'})
      log('info', 'job:queued', {file: main, job: job.id, name: job.name === vmName(main) ? undefined : job.name, size: job.size})
    }
  }

  private createJob(job: NewJob, status: 'queued' | 'duplicate' | 'failed' = 'queued', detail?: string): JobRow {
    const {config, store} = this.ctx
    const cfg = config()
    const outputPath = jobOutputPath(store, cfg.outputDir, job.name, job.id)
    return store.insertJob({
      definition_json: JSON.stringify(definitionFor(job, cfg, outputPath)),
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
}
