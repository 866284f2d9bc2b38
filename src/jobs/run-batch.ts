import type {H2KError, JobObserver, JobResult} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {runJob} from '../stages/run-job.js'
import type {StageRegistry} from '../stages/stage-registry.js'
import type {PlannedJob} from './job-plan.js'

export type BatchJobStatus = 'succeeded' | 'failed' | 'skipped' | 'cancelled'

export interface BatchJobOutcome {
  name: string
  status: BatchJobStatus
  durationMs: number
  outputs: string[]
  report?: string
  /** The libvirt domain the job wrote (--emit libvirt). */
  libvirtXml?: string
  error?: ReturnType<H2KError['toJSON']>
  /** The full result of a succeeded job. */
  result?: JobResult
}

export interface BatchOptions {
  registry: StageRegistry
  signal: AbortSignal
  concurrency: number
  /** false: no new job starts after the first failure (running ones finish; the rest are `skipped`). */
  continueOnError: boolean
  /** An observer per job (its own renderer). */
  observerFor?: (job: PlannedJob) => JobObserver & {finish?: () => Promise<void>}
  onJobEnd?: (outcome: BatchJobOutcome) => void
}

/** Run planned jobs through the one runJob(), at most `concurrency` at a time, in file order. */
export async function runBatch(jobs: readonly PlannedJob[], options: BatchOptions): Promise<BatchJobOutcome[]> {
  const outcomes: BatchJobOutcome[] = jobs.map((job) => ({durationMs: 0, name: job.name, outputs: [], status: 'skipped'}))
  let next = 0
  let stop = false
  const worker = async (): Promise<void> => {
    while (!stop && !options.signal.aborted && next < jobs.length) {
      const index = next++
      const job = jobs[index]!
      const observer = options.observerFor?.(job)
      const t0 = performance.now()
      let outcome: BatchJobOutcome
      try {
        const result = await runJob(job.settings, {observer, registry: options.registry, signal: options.signal})
        outcome = {durationMs: Math.round(performance.now() - t0), name: job.name, outputs: result.outputs.map((o) => o.path), report: result.report, ...(result.libvirtXml === undefined ? {} : {libvirtXml: result.libvirtXml}), result, status: 'succeeded'}
      } catch (error) {
        const mapped = mapForeignError(error)
        const cancelled = mapped.code === 'H2K_CANCELLED'
        outcome = {durationMs: Math.round(performance.now() - t0), error: mapped.toJSON(), name: job.name, outputs: [], status: cancelled ? 'cancelled' : 'failed'}
        if (!options.continueOnError) stop = true
      } finally {
        await observer?.finish?.()
      }
      outcomes[index] = outcome
      options.onJobEnd?.(outcome)
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(options.concurrency, jobs.length))}, () => worker()))
  if (options.signal.aborted) {
    for (const outcome of outcomes) if (outcome.status === 'skipped') outcome.status = 'cancelled'
  }
  return outcomes
}
