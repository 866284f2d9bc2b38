import {rm} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import {H2KError, type JobEvent, type JobResult} from '@hyper2kvm/plugin-api'
import {isLeaseLost, type JobLeases, leaseLost} from '../cluster/job-leases.js'
import {isStoreUnavailable, type StoreOutage} from '../cluster/store-outage.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {jobResultJson} from '../output/job-result-json.js'
import {runJob} from '../stages/run-job.js'
import type {StageRegistry} from '../stages/stage-registry.js'
import type {Clock} from '../time/clock.js'
import type {DaemonConfig} from './config.js'
import type {DaemonEvent} from './daemon-events.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import {storedError} from './error-record.js'
import type {Definition} from './job-definition.js'
import {errorInfo, errorToStore, jobInfo} from './job-info.js'
import {checkRecordedInput} from './input-roots.js'
import {childRecordsOf} from './leftover-children.js'
import {ownOutputPath} from './output-owner.js'
import {skipDependents} from './dependency-skip.js'
import {decideRetry} from './retry-decision.js'
import type {JobRow, JobStore} from './store.js'

/** A job the pool runs. */
export interface RunningJob {
  row: JobRow
  controller: AbortController
  startedAt: number
  size: number
  done: Promise<void>
  phase?: string
  /** This run's number in job_attempts. */
  attemptNo?: number
  /** Set when the job was cancelled through the service (API, CLI, window_end: cancel): it ends cancelled. */
  cancelReason?: string
  /** Set when this node lost the job's lease (renewal found it gone, the node fenced): nothing of the attempt is written. */
  leaseLost?: H2KError
}

export interface RunnerContext {
  store: JobStore
  registry: StageRegistry
  config: () => DaemonConfig
  log: DaemonLogFn
  emit: (event: DaemonEvent) => void
  /** Settle the claim of a drop-dir job that ended (a no-op for API and schedule jobs: they have no claim). */
  settle: (row: JobRow) => Promise<void>
  /** The daemon is stopping: a cancelled job is re-queued, not failed. */
  stopping: () => boolean
  /** Start what is due (after a retry delay). */
  pump: () => void
  /** The daemon's clock: a retry's next_attempt_at and the timer that pumps then. */
  clock: Clock
  /** This node's job leases: the claim, and every outcome write conditional on still holding the lease. */
  leases: JobLeases
  /** Store outages: an outcome write that meets one is kept and retried while the lease may still hold. */
  outage: StoreOutage
  /** Whether this node's leases may still hold (false once it fenced itself). */
  leaseMayHold: () => boolean
}

/** How long an outcome write waits before it is tried again during a store outage. */
const OUTCOME_RETRY_MS = 1000

/**
 * One attempt of one job: runJob() with the daemon's observer, then the store transition — succeeded
 * (recorded for dedup), retry_wait with backoff, failed — and the events the pieces hear.
 */
export class JobRunner {
  constructor(private readonly ctx: RunnerContext) {}

  /**
   * Claim a due job for this node (one conditional UPDATE: false when another node won it) and open its
   * attempt row, in one transaction. Throws what the store throws (the pool's pump reports outages).
   */
  claim(row: JobRow): {row: JobRow; attemptNo: number} | undefined {
    const {leases, store} = this.ctx
    return store.transaction(() => {
      const claimed = leases.claim(row.id, (n) => `attempt ${n} on node ${leases.nodeId}`)
      return claimed === undefined ? undefined : {attemptNo: store.startAttempt(claimed.id), row: claimed}
    })
  }

  /** Run a job `claim` won: entry.row is its running row, entry.attemptNo its attempt. */
  async execute(entry: RunningJob, definition: Definition): Promise<void> {
    const {config, emit, log, store} = this.ctx
    const attempt = entry.row.attempts
    definition = ownOutputPath(store, config().outputDir, entry.row, definition)
    const row = store.job(entry.row.id) ?? entry.row
    entry.row = row
    const fields = {file: row.source_path, job: row.id}
    log('info', 'job:start', {...fields, attempt})
    const job = jobInfo(row, definition)
    emit({at: new Date(), attempt, job, type: 'job:started'})
    const observer = {
      onEvent: (event: JobEvent) => {
        if (event.type === 'progress' || event.type === 'stage:start') {
          emit({at: new Date(), job, phase: event.phase, stage: event.stage, type: 'job:progress'})
        } else if (event.type === 'stage:end') {
          emit({at: new Date(), durationMs: event.durationMs, job, kind: event.phase, stage: event.stage, status: event.status, type: 'job:stage'})
        } else if (event.type === 'phase:start') {
          emit({at: new Date(), job, phase: event.phase, type: 'job:phase'})
          entry.phase = event.phase
          this.progress(entry, {phase: event.phase, stages: event.stages})
          log('debug', 'job:phase', {...fields, phase: event.phase})
        } else if (event.type === 'warning') {
          log('warn', 'job:warning', {...fields, code: event.warning.code, phase: entry.phase}, event.warning.message)
        }
      },
    }
    let result: JobResult
    try {
      checkRecordedInput(row, definition.settings.input, config())
      // The job owns its output directory: whatever an earlier attempt left there goes first.
      await rm(row.output_path, {force: true, recursive: true}).catch((error: unknown) => {
        throw new H2KError('H2K_OUTPUT_FAILED', `Cannot clear the job's output directory ${row.output_path}: ${(error as Error).message}`, {cause: error, phase: 'setup'})
      })
      const cfg = config()
      result = await runJob(definition.settings, {childRecords: childRecordsOf(cfg.stateDir), jobId: row.id, observer, registry: this.ctx.registry, signal: entry.controller.signal})
    } catch (error) {
      await this.failed(entry, definition, mapForeignError(error))
      return
    }
    const durationMs = Date.now() - entry.startedAt
    const previous = row.attempts > 1 && row.error ? errorInfo(storedError(row)) : undefined
    const attemptNo = entry.attemptNo ?? row.attempts
    const written = await this.persist(entry, () =>
      this.ctx.leases.transition(row.id, 'succeeded', `${result.outputs.length} output(s) in ${durationMs} ms`, {completed_at: new Date().toISOString(), error: null, not_before: null, result_json: JSON.stringify(jobResultJson(result)), wait_reason: null}, () => {
        store.endAttempt(row.id, attemptNo, 'succeeded')
        // Only dropped disks count for dedup; a job config or manifest is an explicit request.
        if (definition.from !== 'document') {
          store.recordProcessed({file_hash: definition.hash ?? null, file_size: definition.size, filename: definition.filename, job_id: row.id, output_path: row.output_path})
        }
      }),
    )
    if (written === undefined) return
    log('info', 'job:succeeded', {...fields, duration_ms: durationMs, output: row.output_path})
    const outputBytes = result.outputs.reduce((sum, o) => sum + o.bytesOnDisk, 0)
    emit({at: new Date(), attempt, durationMs, job, maxRetries: definition.policy?.retry?.maxRetries ?? config().retry.maxRetries, outputBytes, outputPath: row.output_path, type: 'job:succeeded', ...(previous ? {previousError: previous} : {})})
    await this.ctx.settle(row)
    // Its dependents may be due now.
    this.ctx.pump()
  }

  private async failed(entry: RunningJob, definition: Definition, error: H2KError): Promise<void> {
    const {config, emit, log, store} = this.ctx
    const row = entry.row
    const attemptNo = entry.attemptNo ?? row.attempts
    const fields = {code: error.code, file: row.source_path, job: row.id, phase: error.phase}
    // Lost the lease (renewal found it gone, the node fenced, a write refused): nothing more is written.
    if (entry.leaseLost !== undefined || isLeaseLost(error)) {
      this.abandon(entry, entry.leaseLost ?? error)
      return
    }
    if (error.code === 'H2K_CANCELLED' && entry.cancelReason !== undefined) {
      if (!(await this.clearHeldOutput(entry))) return
      await this.cancelled(entry, definition, error)
      return
    }
    if (error.code === 'H2K_CANCELLED' && this.ctx.stopping()) {
      const requeued = await this.persist(entry, () => this.ctx.leases.transition(row.id, 'queued', 'daemon stopped: cancelled and re-queued', {attempts: row.attempts - 1}, () => store.endAttempt(row.id, attemptNo, 'requeued', error.toJSON())))
      if (requeued !== undefined) log('info', 'job:requeued', fields, 'cancelled by stop; will run again on the next start')
      return
    }
    // Nothing of a failed attempt is kept: the job owns its output directory (while this node holds its lease).
    if (!(await this.clearHeldOutput(entry))) return
    const {retry, verbose} = config()
    const job = jobInfo(row, definition)
    const decision = decideRetry(row.attempts, error.code, error.permanent, retry, definition.policy?.retry)
    const stored = errorToStore(error, verbose)
    if (decision.action === 'retry') {
      const {delayMs, maxRetries} = decision
      const waiting = await this.persist(entry, () =>
        this.ctx.leases.transition(row.id, 'retry_wait', `${error.code}: ${error.message} — retry ${row.attempts}/${maxRetries} in ${delayMs} ms`, {error: JSON.stringify(error.toJSON()), next_attempt_at: this.ctx.clock.now() + delayMs}, () =>
          store.endAttempt(row.id, attemptNo, 'retry', stored),
        ),
      )
      if (waiting === undefined) return
      log('warn', 'job:retry', {...fields, delay_ms: delayMs, retry: `${row.attempts}/${maxRetries}`}, error.message)
      emit({at: new Date(), attempt: row.attempts, delayMs, error: errorInfo(error), job, maxRetries, nextRetryAt: new Date(this.ctx.clock.now() + delayMs), type: 'job:retry'})
      this.ctx.clock.setTimer(() => this.ctx.pump(), delayMs + 10)
      return
    }
    const status = decision.action
    const done = await this.persist(entry, () =>
      this.ctx.leases.transition(row.id, status, `${error.code}: ${error.message} (${decision.why})`, {completed_at: new Date().toISOString(), error: JSON.stringify(stored)}, () => store.endAttempt(row.id, attemptNo, status, stored)),
    )
    if (done === undefined) return
    log('error', `job:${status}`, {...fields, permanent: error.permanent}, `${error.message} (${decision.why})`)
    const info = errorInfo(error)
    emit({at: new Date(), attempt: row.attempts, durationMs: Date.now() - entry.startedAt, error: info, job, maxRetries: decision.maxRetries, retrying: false, type: 'job:failed', ...(status === 'dead' ? {exhausted: true} : {})})
    if (status === 'dead') emit({at: new Date(), attempts: row.attempts, error: info, job, type: 'job:dead'})
    await this.ended(done)
  }

  /** Cancelled through the service while running: the attempt ends cancelled, the job too (never re-queued). */
  private async cancelled(entry: RunningJob, definition: Definition, error: H2KError): Promise<void> {
    const {emit, log, store} = this.ctx
    const reason = entry.cancelReason ?? 'cancelled'
    const done = await this.persist(entry, () =>
      this.ctx.leases.transition(entry.row.id, 'cancelled', `cancelled while running: ${reason}`, {completed_at: new Date().toISOString(), error: JSON.stringify(new H2KError('H2K_CANCELLED', `Cancelled: ${reason}`).toJSON())}, () =>
        store.endAttempt(entry.row.id, entry.attemptNo ?? entry.row.attempts, 'cancelled', error.toJSON()),
      ),
    )
    if (done === undefined) return
    log('info', 'job:cancelled', {file: done.source_path, job: done.id, reason})
    emit({at: new Date(), job: jobInfo(done, definition), reason, type: 'job:cancelled'})
    await this.ended(done)
  }

  /**
   * One outcome write of a running job (conditional on its lease, leases.transition). During a store outage
   * it is kept and tried again while the lease may still hold; once it cannot (the node fenced) or the write
   * finds the lease gone, the attempt is abandoned: undefined, nothing written, its leftovers are the
   * taker's to clear.
   */
  private async persist<T>(entry: RunningJob, write: () => T): Promise<T | undefined> {
    for (;;) {
      try {
        const value = write()
        this.ctx.outage.answered()
        return value
      } catch (error) {
        if (isLeaseLost(error)) {
          this.abandon(entry, error as H2KError)
          return undefined
        }
        if (!isStoreUnavailable(error)) throw error
        this.ctx.outage.failed(error, 'job-outcome')
        if (!this.ctx.leaseMayHold()) {
          this.abandon(entry, leaseLost(entry.row.id, 'the store stayed unreachable until the node fenced itself'))
          return undefined
        }
        await sleep(OUTCOME_RETRY_MS)
      }
    }
  }

  /** The attempt's lease is lost: nothing of it is written (the node that re-queues the job clears its outputs). */
  private abandon(entry: RunningJob, error: H2KError): void {
    this.ctx.log('warn', 'job:lease-lost', {code: 'H2K_LEASE_LOST', file: entry.row.source_path, job: entry.row.id}, error.message)
  }

  /** Progress of a phase: a lost lease aborts the run; an outage only skips this progress line. */
  private progress(entry: RunningJob, progress: unknown): void {
    try {
      this.ctx.leases.setProgress(entry.row.id, progress)
    } catch (error) {
      if (isLeaseLost(error)) {
        entry.leaseLost = error as H2KError
        entry.controller.abort(error)
      } else if (!this.ctx.outage.failed(error, 'job-progress')) {
        this.ctx.log('warn', 'job:progress-not-recorded', {job: entry.row.id}, mapForeignError(error).message)
      }
    }
  }

  /**
   * Clear the output directory of an attempt that did not succeed, while this node still holds the lease
   * (another node may own the job — and that directory — once it is lost). False: the lease is lost (the
   * attempt is abandoned). During an outage the directory is left: the next attempt clears it at its start.
   */
  private async clearHeldOutput(entry: RunningJob): Promise<boolean> {
    try {
      this.ctx.store.transaction(() => this.ctx.leases.assertHeld(entry.row.id, 'cannot clear its outputs'))
    } catch (error) {
      if (isLeaseLost(error)) {
        this.abandon(entry, error as H2KError)
        return false
      }
      if (!this.ctx.outage.failed(error, 'job-outcome')) throw error
      return true
    }
    await this.clearOutput(entry.row)
    return true
  }

  /** Remove what an attempt that did not succeed left in the job's output directory; a failure is logged (never silent). */
  private async clearOutput(row: JobRow): Promise<void> {
    await rm(row.output_path, {force: true, recursive: true}).catch((error: unknown) => {
      this.ctx.log('warn', 'job:cleanup-failed', {job: row.id, output: row.output_path}, `cannot remove what the attempt left: ${mapForeignError(error).message}`)
    })
  }

  /** A job ended without success: its dependents are skipped, and every claim concerned may settle. */
  private async ended(done: JobRow): Promise<void> {
    const {emit, log, store} = this.ctx
    const skipped = skipDependents({emit, log, store}, done.id)
    for (const row of [done, ...skipped]) await this.ctx.settle(row)
  }
}
