import {existsSync} from 'node:fs'
import {mkdir, rm} from 'node:fs/promises'
import {basename, extname, join} from 'node:path'

import {isStoreUnavailable} from '../cluster/store-outage.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {writeNewFileAtomic} from '../fs/write-new-file.js'
import {manifestReport} from '../jobs/manifest-report.js'
import {storedJobResult} from '../output/job-result-json.js'
import {claimDir, type ClaimRecord, settleFiles, settleTarget} from './claim-files.js'
import type {DaemonConfig} from './config.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import {today} from './layout.js'
import {ENDED_BADLY, errorRecord, storedError} from './error-record.js'
import {readClaimRecord} from './claim-record.js'
import type {IntakeClaims} from './intake-claims.js'
import {definitionOf} from './job-definition.js'
import type {JobRow, JobStore} from './store.js'

/** One job in a `.meta.json`. */
function jobSummary(row: JobRow): Record<string, unknown> {
  const result = row.result_json ? storedJobResult(row.result_json) : undefined
  return {
    job_id: row.id,
    name: row.name,
    status: row.status,
    attempts: row.attempts,
    output_path: row.status === 'succeeded' ? row.output_path : null,
    outputs: result?.outputs.map((o) => o.path) ?? [],
    report: result?.report ?? null,
    // The libvirt domain (--emit libvirt / emit: [libvirt]) beside the outputs, when the job wrote one.
    ...(typeof result?.libvirt_xml === 'string' ? {libvirt_xml: result.libvirt_xml} : {}),
    started_at: row.started_at,
    completed_at: row.completed_at,
    ...(ENDED_BADLY.has(row.status) ? {error: storedError(row)} : {}),
  }
}

/**
 * `<file>.meta.json` (workflow layouts): 001's fields — job_id (the store's job id; the claim id for a claim
 * of several jobs, a `jobs:` batch), original_name, completed_at, status ("success", else "failed" or
 * "duplicate") — and ours beside them: the claim's files, its kind and id, each job with its outputs and report.
 */
function metaRecord(record: ClaimRecord, jobs: JobRow[], outcome: string, layout: string): Record<string, unknown> {
  const settledAt = new Date().toISOString()
  return {
    job_id: jobs.length === 1 ? jobs[0]!.id : record.id,
    original_name: record.main,
    // When the claim's last job finished (ISO 8601, UTC).
    completed_at: jobs.map((j) => j.completed_at ?? '').sort().at(-1) || settledAt,
    status: outcome === 'succeeded' ? 'success' : outcome,
    filename: record.main,
    files: record.files,
    kind: record.kind,
    claim_id: record.id,
    layout,
    claimed_at: record.claimed_at,
    settled_at: settledAt,
    jobs: jobs.map((j) => jobSummary(j)),
  }
}

/**
 * Settling a claim once every job of it has finished: its files move to processed/, failed/ (with the
 * error file) or duplicates/, with their sidecars; idempotent and resumable after a crash, and done by one
 * node of a cluster (its intake claim row is taken for settling first). Every look and
 * move goes through the held bookkeeping descriptors (`safe`).
 */
export class ClaimSettler {
  private readonly settling = new Set<string>()
  /** Claims whose settling met a store outage: settled again by retryDeferred(). */
  private readonly deferred = new Set<string>()

  constructor(
    private readonly store: JobStore,
    private readonly claims: IntakeClaims,
    private readonly config: () => DaemonConfig,
    private readonly safe: (real: string) => string,
    private readonly log: DaemonLogFn,
  ) {}

  /**
   * A job ended: settle its claim if it has one. Jobs of the API and schedules (origin api/schedule) have
   * no claim directory, and none is looked for.
   */
  async settleJob(row: JobRow): Promise<void> {
    if ((row.origin ?? 'drop') !== 'drop') return
    // Never thrown: callers fire this and go on (a rejection nobody awaits would end the daemon).
    await this.maybeSettle(row.intake_id ?? row.id).catch((error: unknown) => {
      this.log('error', 'file:settle-failed', {file: row.source_path, intake: row.intake_id ?? row.id}, mapForeignError(error).message)
    })
  }

  /**
   * Settle the claim if all its jobs have finished (any terminal status: succeeded, failed, duplicate,
   * cancelled, dead, skipped). A store outage defers it to retryDeferred(), not to the next start.
   */
  async maybeSettle(intakeId: string): Promise<void> {
    try {
      await this.settleIfDone(intakeId)
    } catch (error) {
      const mapped = mapForeignError(error)
      if (!isStoreUnavailable(mapped)) throw mapped
      this.defer(intakeId, mapped.message)
    }
  }

  /** Settle again the claims whose settling met a store outage (the intake loop asks once the store answers). */
  async retryDeferred(): Promise<void> {
    for (const id of [...this.deferred]) {
      try {
        await this.settleIfDone(id)
      } catch (error) {
        const mapped = mapForeignError(error)
        // The store went away again: kept, the next tick asks again.
        if (isStoreUnavailable(mapped)) return
        this.log('error', 'file:settle-failed', {intake: id}, mapped.message)
      }
      this.deferred.delete(id)
    }
  }

  private defer(intakeId: string, why: string): void {
    if (!this.deferred.has(intakeId)) this.log('warn', 'file:settle-deferred', {intake: intakeId}, `${why} (settled once the store answers)`)
    this.deferred.add(intakeId)
  }

  private async settleIfDone(intakeId: string): Promise<void> {
    if (this.settling.has(intakeId)) return
    const jobs = this.store.jobsOfIntake(intakeId)
    if (jobs.length === 0 || jobs.some((j) => j.status === 'queued' || j.status === 'running' || j.status === 'retry_wait')) return
    const dir = claimDir(this.config().layout.processing, intakeId)
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
      // One node settles a claim (on a shared store, whichever node ran its last job asks too).
      if (!this.claims.takeForSettling(intakeId)) return
      const record = await readClaimRecord(this.safe(dir), intakeId)
      if (record) await this.settle(dir, record, jobs)
      else await rm(this.safe(dir), {force: true, recursive: true})
      this.claims.settled(intakeId)
    } catch (error) {
      const mapped = mapForeignError(error)
      // Perhaps taken for settling by this node and not yet recorded as settled: the caller defers it (takeForSettling lets this node resume).
      if (isStoreUnavailable(mapped)) throw mapped
      this.log('error', 'file:settle-failed', {file: jobs[0]!.source_path, intake: intakeId}, mapped.message)
    } finally {
      this.settling.delete(intakeId)
    }
  }

  private async settle(dir: string, record: ClaimRecord, jobs: JobRow[]): Promise<void> {
    const config = this.config()
    const {layout} = config
    // The root causes first (failed, dead), then what followed from them or from an operator (skipped, cancelled).
    const rank = (j: JobRow): number => ['failed', 'dead', 'cancelled', 'skipped'].indexOf(j.status)
    const failed = jobs.filter((j) => ENDED_BADLY.has(j.status)).sort((a, b) => rank(a) - rank(b))
    const outcome = failed.length > 0 ? 'failed' : jobs.every((j) => j.status === 'duplicate') ? 'duplicate' : 'succeeded'
    const date = today()
    const dated = outcome === 'failed' ? layout.failedDir(date) : outcome === 'duplicate' ? layout.duplicatesDir(date) : layout.processedDir(date)
    const keep = outcome !== 'succeeded' || layout.kind !== 'watch' || config.archiveProcessed
    // A refused target throws before anything moves.
    const target = keep ? await settleTarget(this.safe(dir), record, dated, (real) => this.safe(real)) : undefined
    if (target) {
      await mkdir(this.safe(target), {mode: 0o750, recursive: true})
      // Sidecars first: a claim that left processing/ always has them.
      for (const [name, content] of await this.sidecars(config, record, jobs, failed, outcome, target)) {
        await writeNewFileAtomic(this.safe(join(target, name)), `${JSON.stringify(content, null, 2)}\n`)
        this.log('info', name.endsWith('.error.json') ? 'job:error-file' : 'file:sidecar', {intake: record.id, path: join(target, name)})
      }
    }
    await settleFiles(this.safe(dir), record, target === undefined ? undefined : this.safe(target))
    this.log('info', `file:${outcome === 'succeeded' ? 'processed' : outcome}`, {file: record.main, intake: record.id, to: target ?? 'removed'})
  }

  /** The files written next to a settled claim: `.error.json`, `.meta.json` (workflow layouts), `.report.json` (manifests). */
  private async sidecars(config: DaemonConfig, record: ClaimRecord, jobs: JobRow[], failed: JobRow[], outcome: string, target: string): Promise<Array<[string, unknown]>> {
    const {layout} = config
    const out: Array<[string, unknown]> = []
    const size = definitionOf(jobs[0]!).size
    if (failed.length > 0) {
      const others = jobs.filter((j) => !ENDED_BADLY.has(j.status))
      const input = {dir: target, failed, files: record.files, inbox: layout.inbox, layout: layout.kind, others, outputDir: config.outputDir, retry: config.retry, size, verbose: config.verbose}
      out.push([`${record.main}.error.json`, await errorRecord(input)])
    }
    if (layout.kind !== 'watch') {
      out.push([
        `${record.main}.meta.json`,
        metaRecord(record, jobs, outcome, layout.kind),
      ])
    }
    if (record.kind === 'manifest' || layout.kind === 'manifest-workflow') {
      const job = jobs[0]!
      const started = job.started_at ?? job.created_at
      const error = ENDED_BADLY.has(job.status) ? storedError(job) : undefined
      const report = manifestReport({
        durationMs: Date.parse(job.completed_at ?? new Date().toISOString()) - Date.parse(started),
        error: error as Record<string, unknown> | undefined,
        jobId: job.id,
        manifest: join(target, record.main),
        result: job.result_json ? storedJobResult(job.result_json) : undefined,
        startedAt: started,
        status: job.status,
      })
      out.push([`${basename(record.main, extname(record.main))}.report.json`, report])
    }
    return out
  }
}
