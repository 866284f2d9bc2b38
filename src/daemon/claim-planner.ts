import {randomUUID} from 'node:crypto'
import {existsSync, statSync} from 'node:fs'
import {lstat, stat} from 'node:fs/promises'
import {basename, join} from 'node:path'

import {isStoreUnavailable} from '../cluster/store-outage.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {claimDir, claimFiles, type ClaimRecord} from './claim-files.js'
import type {DaemonConfig} from './config.js'
import type {DaemonEvent} from './daemon-events.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import {fileIdentity} from './file-identity.js'
import {fileKey} from './file-key.js'
import type {IntakeClaims} from './intake-claims.js'
import {checkInputAllowed} from './input-roots.js'
import {type IntakeItem, insideInbox, planDocument, recheckItem, symlinkRefused} from './intake-items.js'
import {definitionFor, type NewJob, vmName} from './job-definition.js'
import {errorInfo, errorToStore, jobInfo} from './job-info.js'
import {jobOutputPath} from './job-output-path.js'
import {droppedOverrideIgnored, policyFromDocument} from './job-policy.js'
import {resolveDependencies} from './resolve-dependencies.js'
import {refusedError} from './refused-error.js'
import type {JobRow, JobStore} from './store.js'

/** What the planner needs from the daemon. */
export interface PlannerContext {
  store: JobStore
  /** The intake claim rows (intake-claims.ts): one node wins each dropped file. */
  claims: IntakeClaims
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
 * Claims and their jobs: an item is claimed by a row in intake_claims (the one node that inserts it wins
 * the file, intake-claims.ts), then by atomic renames into <processing>/<id>/ (record first, main file last), then planned — one job per disk, one per job of a config or manifest; a document that cannot
 * run fails at once; a duplicate is recorded as such.
 */
export class ClaimPlanner {
  /** Claims being planned (hashing for dedup); the daemon awaits them when it stops. */
  private readonly planning = new Set<Promise<void>>()
  /** Claims whose planning met a store outage, by claim id: planned again by retryDeferred(). */
  private readonly deferred = new Map<string, {dir: string; record: ClaimRecord}>()

  constructor(private readonly ctx: PlannerContext) {}

  /** Resolves once every planning in progress has ended. */
  async idle(): Promise<void> {
    await Promise.all(this.planning)
  }

  /** Claim an item (its files leave the inbox); planning runs beside the intake loop. Returns the claimed files. */
  async claim(found: IntakeItem): Promise<string[]> {
    const {claims, config, log, safe} = this.ctx
    const inbox = config().layout.inbox
    const item = recheckItem(inbox, found)
    const files = [item.main, ...[...item.required, ...item.optional].filter((rel) => existsSync(join(inbox, rel)))]
    const refused = item.kind === 'invalid' && item.error ? {code: item.error.code, details: item.error.details, message: item.error.message, suggestions: item.error.suggestions} : undefined
    let id: string
    let identity: string
    try {
      identity = await fileIdentity(join(inbox, item.main))
      id = this.freeClaimId()
      // The claim row before the first rename: on a drop directory shared by several nodes, one wins the file.
      if (!claims.claim(item.main, identity, id)) {
        log('debug', 'file:claimed-elsewhere', {file: item.main}, 'another node claimed it first')
        return []
      }
    } catch (error) {
      // Gone meanwhile (another node renamed it, the dropper removed it): nothing to say.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log('warn', 'file:claim-failed', {file: item.main}, mapForeignError(error).message)
      return files
    }
    const dir = claimDir(config().layout.processing, id)
    const record: ClaimRecord = {claimed_at: new Date().toISOString(), files, id, identity, kind: item.kind, main: item.main, ...(refused ? {refused} : {})}
    try {
      if (!(await claimFiles(inbox, safe(dir), record))) {
        this.release(id)
        return files
      }
    } catch (error) {
      log('warn', 'file:claim-failed', {file: item.main}, mapForeignError(error).message)
      this.release(id)
      return files
    }
    log('info', 'file:claimed', {file: item.main, files: files.length > 1 ? files.length : undefined, intake: id, kind: item.kind})
    this.planBeside(dir, record)
    return files
  }

  /**
   * Plan a claim beside the intake loop (planning may hash a large disk for dedup; it never blocks other
   * claims). A store outage defers it to retryDeferred(); any other failure waits for the next start.
   */
  private planBeside(dir: string, record: ClaimRecord, retried = false): void {
    const {log} = this.ctx
    const fields = {file: record.main, intake: record.id}
    const planning = this.plan(dir, record)
      .catch((error: unknown) => {
        const mapped = mapForeignError(error)
        if (mapped.code === 'H2K_CANCELLED') {
          log('info', 'file:plan-deferred', fields, 'daemon stopping; planned on the next start')
        } else if (isStoreUnavailable(mapped)) {
          this.deferred.set(record.id, {dir, record})
          // Said once; a store that keeps failing on each retry is the outage's to report.
          log(retried ? 'debug' : 'warn', 'file:plan-deferred', fields, `${mapped.message} (planned again once the store answers)`)
        } else {
          log('error', 'file:plan-failed', fields, `${mapped.message} (planned again on the next start)`)
        }
      })
      .finally(() => {
        this.planning.delete(planning)
        this.ctx.planned()
      })
    this.planning.add(planning)
  }

  /**
   * Plan again the claims whose planning met a store outage (the intake loop asks once the store answers),
   * so a file claimed just as the store went away does not wait in processing/ for the next start. Only a
   * claim still this node's is planned, and only if it has no jobs yet: a COMMIT lost with the connection
   * may have recorded them after all (then the claim is settled once they are done, as after a restart).
   */
  async retryDeferred(): Promise<void> {
    const {claims, log, settle, store} = this.ctx
    for (const [id, entry] of [...this.deferred]) {
      try {
        if (claims.row(id)?.node_id !== claims.nodeId) {
          this.deferred.delete(id)
          log('warn', 'file:plan-dropped', {file: entry.record.main, intake: id}, 'the claim is no longer this node\'s: its owner plans it')
          continue
        }
        if (store.jobsOfIntake(id).length > 0) {
          this.deferred.delete(id)
          await settle(id)
          continue
        }
      } catch (error) {
        const mapped = mapForeignError(error)
        // The store went away again: the next tick asks again.
        if (isStoreUnavailable(mapped)) return
        this.deferred.delete(id)
        log('error', 'file:plan-failed', {file: entry.record.main, intake: id}, `${mapped.message} (planned again on the next start)`)
        continue
      }
      this.deferred.delete(id)
      this.planBeside(entry.dir, entry.record, true)
    }
  }

  /**
   * A claim id no claim row and no job carries yet: 8 hex digits, drawn by every node independently, so a
   * clash is possible on a busy shared store and looked for (the claim directory is also made exclusively).
   */
  private freeClaimId(): string {
    for (let i = 0; ; i++) {
      const id = randomUUID().slice(0, 8)
      if (i >= 8 || this.ctx.claims.idFree(id)) return id
    }
  }

  /** A claim that did not happen: its row goes (a store that cannot be reached now is logged; the row is closed at the next start). */
  private release(id: string): void {
    try {
      this.ctx.claims.release(id)
    } catch (error) {
      this.ctx.log('warn', 'file:claim-release-failed', {intake: id}, mapForeignError(error).message)
    }
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
          const policy = policyFromDocument(job.keys ?? {}, plan.batchKeys, 'drop')
          if (droppedOverrideIgnored(job.keys ?? {}, plan.batchKeys)) {
            log('warn', 'job:override-ignored', {file: main, job: job.name}, 'override_window ignored: a dropped job file may not override its window (the API and `schedule trigger --override-window` may)')
          }
          jobs.push({filename: basename(input), id: plan.jobs.length === 1 ? id : `${id}-${index + 1}`, input, intake: id, name: job.name, policy, settings: job.settings, size})
        }
        // depends_on: names of the batch's jobs first, then ids of jobs in the store; cycles and unknown names refuse the file.
        const nodes = jobs.map((job, index) => ({at: plan.kind === 'batch' ? `jobs[${index}]` : '(job)', dependsOn: job.policy?.dependsOn, id: job.id, name: job.name}))
        const {edges, order} = resolveDependencies(nodes, (ref) => store.job(ref)?.id, main)
        jobs = order.map((node) => jobs.find((j) => j.id === node.id)!)
        for (const job of jobs) {
          const ids = edges.get(job.id) ?? []
          if (job.policy) job.policy = {...job.policy, ...(ids.length > 0 ? {dependsOn: ids} : {})}
          if (ids.length === 0 && job.policy) delete job.policy.dependsOn
        }
      }
    } catch (error) {
      const mapped = mapForeignError(error)
      if (mapped.code === 'H2K_CANCELLED') throw mapped
      // lstat: a refused symlink's target size is never recorded.
      const info = await lstat(path).catch(() => undefined)
      const size = info?.isFile() ? info.size : 0
      // One transaction: a job that cannot run is never left queued (a store lost between the two writes).
      const row = store.transaction(() => {
        const created = this.createJob({filename: main, id, input: path, intake: id, name: vmName(main), size}, 'failed', `${mapped.code}: ${mapped.message}`)
        store.transition(created.id, 'failed', `cannot run: ${mapped.code}${mapped.permanent ? ' (permanent: not retried)' : ''}`, {completed_at: new Date().toISOString(), error: JSON.stringify(errorToStore(mapped, cfg.verbose))})
        return created
      })
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
    // One transaction: a claim's jobs (and their dependency edges) are recorded all or none.
    const rows = store.transaction(() => jobs.map((job) => this.createJob(job)))
    for (const [index, job] of jobs.entries()) {
      const row = rows[index]!
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
      ...(job.policy?.dependsOn ? {depends_on: job.policy.dependsOn} : {}),
      vm_path: job.input,
    })
  }
}
