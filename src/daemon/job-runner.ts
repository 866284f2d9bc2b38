import {rm} from 'node:fs/promises'

import {H2KError, type JobEvent, type JobResult} from '@hyper2kvm/plugin-api'
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
}

/**
 * One attempt of one job: runJob() with the daemon's observer, then the store transition — succeeded
 * (recorded for dedup), retry_wait with backoff, failed — and the events the pieces hear.
 */
export class JobRunner {
  constructor(private readonly ctx: RunnerContext) {}

  async execute(entry: RunningJob, definition: Definition): Promise<void> {
    const {config, emit, log, store} = this.ctx
    const attempt = entry.row.attempts + 1
    definition = ownOutputPath(store, config().outputDir, entry.row, definition)
    const row = store.transition(entry.row.id, 'running', `attempt ${attempt}`, {attempts: attempt, next_attempt_at: null, started_at: new Date().toISOString()})
    entry.row = row
    entry.attemptNo = store.startAttempt(row.id)
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
          store.setProgress(row.id, {phase: event.phase, stages: event.stages})
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
      result = await runJob(definition.settings, {childRecords: childRecordsOf(cfg.outputDir), jobId: row.id, observer, registry: this.ctx.registry, signal: entry.controller.signal})
    } catch (error) {
      await this.failed(entry, definition, mapForeignError(error))
      return
    }
    const durationMs = Date.now() - entry.startedAt
    const previous = row.attempts > 1 && row.error ? errorInfo(storedError(row)) : undefined
    store.transition(row.id, 'succeeded', `${result.outputs.length} output(s) in ${durationMs} ms`, {completed_at: new Date().toISOString(), error: null, not_before: null, result_json: JSON.stringify(jobResultJson(result)), wait_reason: null})
    store.endAttempt(row.id, entry.attemptNo, 'succeeded')
    // Only dropped disks count for dedup; a job config or manifest is an explicit request.
    if (definition.from !== 'document') {
      store.recordProcessed({file_hash: definition.hash ?? null, file_size: definition.size, filename: definition.filename, job_id: row.id, output_path: row.output_path})
    }
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
    if (error.code === 'H2K_CANCELLED' && entry.cancelReason !== undefined) {
      await this.clearOutput(row)
      await this.cancelled(entry, definition, error)
      return
    }
    if (error.code === 'H2K_CANCELLED' && this.ctx.stopping()) {
      store.transition(row.id, 'queued', 'daemon stopped: cancelled and re-queued', {attempts: row.attempts - 1})
      store.endAttempt(row.id, attemptNo, 'requeued', error.toJSON())
      log('info', 'job:requeued', fields, 'cancelled by stop; will run again on the next start')
      return
    }
    // Nothing of a failed attempt is kept: the job owns its output directory.
    await this.clearOutput(row)
    const {retry, verbose} = config()
    const job = jobInfo(row, definition)
    const decision = decideRetry(row.attempts, error.code, error.permanent, retry, definition.policy?.retry)
    const stored = errorToStore(error, verbose)
    if (decision.action === 'retry') {
      const {delayMs, maxRetries} = decision
      store.transition(row.id, 'retry_wait', `${error.code}: ${error.message} — retry ${row.attempts}/${maxRetries} in ${delayMs} ms`, {
        error: JSON.stringify(error.toJSON()),
        next_attempt_at: this.ctx.clock.now() + delayMs,
      })
      store.endAttempt(row.id, attemptNo, 'retry', stored)
      log('warn', 'job:retry', {...fields, delay_ms: delayMs, retry: `${row.attempts}/${maxRetries}`}, error.message)
      emit({at: new Date(), attempt: row.attempts, delayMs, error: errorInfo(error), job, maxRetries, nextRetryAt: new Date(this.ctx.clock.now() + delayMs), type: 'job:retry'})
      this.ctx.clock.setTimer(() => this.ctx.pump(), delayMs + 10)
      return
    }
    const status = decision.action
    const done = store.transition(row.id, status, `${error.code}: ${error.message} (${decision.why})`, {
      completed_at: new Date().toISOString(),
      error: JSON.stringify(stored),
    })
    store.endAttempt(row.id, attemptNo, status, stored)
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
    const done = store.transition(entry.row.id, 'cancelled', `cancelled while running: ${reason}`, {completed_at: new Date().toISOString(), error: JSON.stringify(new H2KError('H2K_CANCELLED', `Cancelled: ${reason}`).toJSON())})
    store.endAttempt(done.id, entry.attemptNo ?? done.attempts, 'cancelled', error.toJSON())
    log('info', 'job:cancelled', {file: done.source_path, job: done.id, reason})
    emit({at: new Date(), job: jobInfo(done, definition), reason, type: 'job:cancelled'})
    await this.ended(done)
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
