import {randomUUID} from 'node:crypto'
import {existsSync} from 'node:fs'

import {H2KError} from '@hyper2kvm/plugin-api'
import type {DaemonConfig} from '../daemon/config.js'
import type {DaemonEvent} from '../daemon/daemon-events.js'
import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import {failedParent, skipDependents} from '../daemon/dependency-skip.js'
import {checkRetriedInput} from '../daemon/input-roots.js'
import {definitionFor} from '../daemon/job-definition.js'
import {jobInfo} from '../daemon/job-info.js'
import {jobOutputPath} from '../daemon/job-output-path.js'
import {policyFromDocument} from '../daemon/job-policy.js'
import {resolveDependencies} from '../daemon/resolve-dependencies.js'
import type {JobRow, JobStore} from '../daemon/store.js'
import {storedJobResult} from '../output/job-result-json.js'
import type {JobDetail, JobList, JobListFilter, JobService, SubmitOptions} from './job-service-types.js'
import {inputFileName, planSubmission} from './plan-submission.js'
import {requeueWithDependents} from './requeue.js'

export type {JobDetail, JobList, JobListFilter, JobService, SubmitOptions} from './job-service-types.js'

/** What the service needs from the daemon. */
export interface JobServiceContext {
  store: JobStore
  config: () => DaemonConfig
  emit: (event: DaemonEvent) => void
  log: DaemonLogFn
  /** Start what is due now. */
  wake: () => void
  /** Abort a running job for `reason`; false when it is not running in this daemon. */
  abortRunning: (id: string, reason: string) => boolean
  /** Settle the claim of a drop-dir job that ended (API and schedule jobs have none). */
  settle: (row: JobRow) => Promise<void>
}

const DEFAULT_LIMIT = 50
const RETRYABLE: ReadonlySet<string> = new Set(['failed', 'dead', 'cancelled', 'skipped'])
const UNFINISHED: ReadonlySet<string> = new Set(['queued', 'running', 'retry_wait'])

const stateError = (row: JobRow, action: string): H2KError =>
  new H2KError('H2K_JOB_STATE', `Job ${row.id} is ${row.status}: it cannot be ${action}.`, {details: {id: row.id, status: row.status}})

/** The daemon's JobService (job-service-types.ts): every write is one store transaction. */
export class DaemonJobService implements JobService {
  constructor(private readonly ctx: JobServiceContext) {}

  async submit(document: unknown, options: SubmitOptions): Promise<JobRow[]> {
    const {config, emit, log, store} = this.ctx
    const cfg = config()
    const label = options.origin === 'schedule' ? `the job template of schedule ${options.scheduleId ?? '?'}` : 'the request body'
    const {jobs, plan} = await planSubmission(document, cfg, label)
    const nodes = jobs.map((job, index) => ({at: plan.kind === 'batch' ? `jobs[${index}]` : '(job)', dependsOn: job.planned.keys?.depends_on, id: randomUUID().slice(0, 8), job, name: job.planned.name}))
    const {edges, order} = resolveDependencies(nodes, (ref) => store.job(ref)?.id, label)
    const rows = store.transaction(() => {
      const reserved = new Set<string>()
      return order.map((node) => {
        const {job} = node
        const outputPath = jobOutputPath(store, cfg.outputDir, node.name, node.id, reserved)
        reserved.add(outputPath)
        const dependsOn = edges.get(node.id) ?? []
        const policy = {
          ...policyFromDocument(job.planned.keys ?? {}, plan.batchKeys, options.origin),
          ...(dependsOn.length > 0 ? {dependsOn} : {}),
          ...(options.notBefore === undefined ? {} : {notBefore: options.notBefore}),
          ...(options.waitReason === undefined ? {} : {waitReason: options.waitReason}),
        }
        const definition = definitionFor({filename: inputFileName(job), id: node.id, input: job.input, intake: node.id, name: node.name, policy, settings: job.planned.settings, size: job.size}, cfg, outputPath)
        return store.insertJob({
          definition_json: JSON.stringify(definition),
          depends_on: dependsOn,
          detail: `submitted (${options.origin}${options.requestId ? `, request ${options.requestId}` : ''}${options.scheduleId ? `, schedule ${options.scheduleId}` : ''})`,
          id: node.id,
          intake_id: null,
          name: node.name,
          origin: options.origin,
          output_path: outputPath,
          source_path: inputFileName(job),
          vm_path: job.input,
          ...(options.notBefore === undefined ? {} : {not_before: options.notBefore, wait_reason: options.waitReason ?? `not before ${new Date(options.notBefore).toISOString()}`}),
          ...(options.requestId ? {request_id: options.requestId} : {}),
          ...(options.scheduleId ? {schedule_id: options.scheduleId} : {}),
        })
      })
    })
    for (const row of rows) {
      emit({at: new Date(), job: jobInfo(row), type: 'job:queued'})
      log('info', 'job:queued', {job: row.id, name: row.name, origin: row.origin, request_id: row.request_id ?? undefined, schedule: row.schedule_id ?? undefined})
    }
    this.ctx.wake()
    // In the document's order, not the insertion order.
    return nodes.map((n) => rows.find((r) => r.id === n.id)!)
  }

  list(filter: JobListFilter): JobList {
    return this.ctx.store.jobsPage({limit: filter.limit ?? DEFAULT_LIMIT, ...(filter.status ? {status: filter.status} : {}), ...(filter.cursor ? {cursor: filter.cursor} : {})})
  }

  show(idOrPrefix: string): JobDetail | undefined {
    const {store} = this.ctx
    const job = store.findJob(idOrPrefix)
    if (!job) return undefined
    return {
      attempts: store.attemptsOf(job.id),
      dependents: store.dependentsOf(job.id),
      dependsOn: store.dependenciesOf(job.id),
      error: job.error === null ? null : (JSON.parse(job.error) as unknown),
      history: store.historyOf(job.id),
      job,
      result: job.result_json === null ? null : storedJobResult(job.result_json),
    }
  }

  cancel(id: string, reason: string): JobRow {
    const {emit, log, store} = this.ctx
    const row = this.find(id)
    if (row.status === 'running' && this.ctx.abortRunning(row.id, reason)) {
      log('info', 'job:cancelling', {job: row.id, reason})
      return row
    }
    // `running` in no worker: its runner failed internally (job:internal-error); cancelled here, or it would stay running for ever.
    if (row.status !== 'queued' && row.status !== 'retry_wait' && row.status !== 'running') throw stateError(row, 'cancelled')
    const error = new H2KError('H2K_CANCELLED', `Cancelled: ${reason}`)
    const done = store.transition(row.id, 'cancelled', `cancelled: ${reason}`, {completed_at: new Date().toISOString(), error: JSON.stringify(error.toJSON()), next_attempt_at: null, not_before: null, wait_reason: null})
    log('info', 'job:cancelled', {file: done.source_path, job: done.id, reason})
    emit({at: new Date(), job: jobInfo(done), reason, type: 'job:cancelled'})
    const skipped = skipDependents({emit, log, store}, done.id)
    for (const ended of [done, ...skipped]) void this.ctx.settle(ended)
    return done
  }

  retry(id: string): JobRow[] {
    const row = this.find(id)
    if (!RETRYABLE.has(row.status)) throw stateError(row, 'retried (only failed, dead, cancelled and skipped jobs are)')
    const parent = failedParent(this.ctx.store, row.id)
    if (parent) throw new H2KError('H2K_JOB_STATE', `Job ${row.id} cannot be retried while job ${parent.id} it depends on is ${parent.status}: retry that one (its skipped dependents come with it).`, {details: {id: row.id, parent: parent.id}})
    if (!existsSync(row.vm_path)) {
      throw new H2KError('H2K_JOB_STATE', `Job ${row.id} cannot be retried: its input is gone (a dropped file moved on with its claim to failed/).`, {
        details: {id: row.id},
        suggestions: ['Drop the file again (from failed/ back into the drop directory), or submit a job naming an input under allowed_input_dirs.'],
      })
    }
    checkRetriedInput(row, this.ctx.config)
    const rows = requeueWithDependents(this.ctx.store, row.id)
    for (const r of rows) {
      this.ctx.emit({at: new Date(), job: jobInfo(r), retried: true, type: 'job:queued'})
      this.ctx.log('info', 'job:retried', {file: r.source_path, job: r.id})
    }
    this.ctx.wake()
    return rows
  }

  dead(filter: Omit<JobListFilter, 'status'>): JobList {
    return this.list({...filter, status: 'dead'})
  }

  /**
   * Delete dead jobs. A dependency edge never silently disappears (a dependent must not run without its
   * parent): one job (`id`) with dependents that have not succeeded is refused (H2K_JOB_STATE naming them:
   * retry it, or purge all); purging all takes each dead job's unsucceeded dependents (skipped, cancelled …,
   * transitively) with it, and keeps a dead job one of whose dependents is still unfinished.
   */
  purge(id?: string): number {
    const {log, store} = this.ctx
    if (id !== undefined) {
      const row = this.find(id)
      if (row.status !== 'dead') throw stateError(row, 'purged (only dead jobs are)')
      const waiting = store.dependentsOf(row.id).filter((child) => store.job(child)?.status !== 'succeeded')
      if (waiting.length > 0) {
        throw new H2KError('H2K_JOB_STATE', `Job ${row.id} cannot be purged: job(s) ${waiting.join(', ')} depend on it and have not succeeded (they would lose the dependency).`, {
          details: {dependents: waiting, id: row.id},
          suggestions: [`Retry ${row.id} (its skipped dependents come with it), or purge the whole dead-letter queue (\`dlq purge --all\`), which removes them with it.`],
        })
      }
      const n = store.deleteJobs([row.id])
      log('info', 'dlq:purged', {job: row.id})
      return n
    }
    const dead: string[] = []
    for (let cursor: string | null | undefined; cursor !== null; ) {
      const page = store.jobsPage({limit: 500, status: 'dead', ...(cursor ? {cursor} : {})})
      dead.push(...page.jobs.map((j) => j.id))
      cursor = page.nextCursor
    }
    const ids = new Set<string>()
    const kept: string[] = []
    for (const deadId of dead) {
      const withDependents = this.unsucceededDependents(deadId)
      if (withDependents === undefined) kept.push(deadId)
      else for (const one of [deadId, ...withDependents]) ids.add(one)
    }
    const n = store.deleteJobs([...ids])
    log('info', 'dlq:purged', {jobs: n, kept: kept.length > 0 ? kept.join(',') : undefined}, kept.length > 0 ? 'dead jobs with an unfinished dependent are kept' : '')
    return n
  }

  /** The dependents of `id` (transitively) that have not succeeded, all finished; undefined when one is still unfinished. */
  private unsucceededDependents(id: string): string[] | undefined {
    const {store} = this.ctx
    const found = new Set<string>()
    const pending = [id]
    while (pending.length > 0) {
      for (const child of store.dependentsOf(pending.shift()!)) {
        const row = store.job(child)
        if (!row || row.status === 'succeeded' || found.has(child)) continue
        if (UNFINISHED.has(row.status)) return undefined
        found.add(child)
        pending.push(child)
      }
    }
    return [...found]
  }

  private find(id: string): JobRow {
    const row = this.ctx.store.findJob(id)
    if (!row) throw new H2KError('H2K_USAGE', `No job "${id}" in the store.`, {details: {id}, suggestions: ['`hyper2kvm ctl jobs` lists the job ids.']})
    return row
  }
}
