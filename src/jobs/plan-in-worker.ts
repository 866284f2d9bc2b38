import {Worker} from 'node:worker_threads'

import {H2KError, isErrorCode} from '@hyper2kvm/plugin-api'
import type {JobPlan, PlanOptions} from './job-plan.js'

/** Wall-clock budget for reading and planning one dropped document (a genuine one takes milliseconds). */
export const PLAN_BUDGET_MS = 10_000
/** Heap for that worker: a document of at most 1 MiB that needs more is hostile. */
const PLAN_HEAP_MB = 256

/** Run from source (tests, under tsx): the worker needs the same TypeScript loader. */
const FROM_SOURCE = import.meta.url.endsWith('.ts')
/** The worker's entry next to this module: plan-worker.js in dist, plan-worker.ts from source. */
const WORKER_URL = new URL(`plan-worker${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url)

export interface WorkerPlanOptions extends PlanOptions {
  /** Terminate the worker after this many milliseconds (PLAN_BUDGET_MS). */
  budgetMs?: number
}

/**
 * loadJobPlan() in a worker thread, so a hostile document can cost the daemon neither its event loop
 * (the control socket keeps answering) nor unbounded memory: the worker is terminated when it overruns
 * its time budget or heap, and that is a permanent H2K_JOB_INVALID that does not quote the document.
 */
export function loadJobPlanInWorker(path: string, options: WorkerPlanOptions = {}): Promise<JobPlan> {
  const {budgetMs = PLAN_BUDGET_MS, ...planOptions} = options
  // From source, the worker first registers tsx's loader, then imports the TypeScript entry.
  const entry = FROM_SOURCE ? `import('tsx/esm/api').then((tsx) => tsx.register()).then(() => import(${JSON.stringify(WORKER_URL.href)}))` : WORKER_URL
  const worker = new Worker(entry, {
    eval: FROM_SOURCE,
    resourceLimits: {maxOldGenerationSizeMb: PLAN_HEAP_MB},
    stderr: false,
    workerData: {options: planOptions, path},
  })
  return new Promise<JobPlan>((resolve, reject) => {
    let settled = false
    const finish = (error: H2KError | undefined, plan?: JobPlan): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      void worker.terminate()
      if (error) reject(error)
      else resolve(plan!)
    }
    const refused = (why: string, reason: string): H2KError =>
      new H2KError('H2K_JOB_INVALID', `${path}: ${why}; a genuine job file or manifest needs a few milliseconds. Refusing it.`, {
        details: {file: path, reason},
        suggestions: ['Check where the file came from; `hyper2kvm validate <file>` reports what is wrong with a genuine one.'],
      })
    const timer = setTimeout(() => finish(refused(`reading it took longer than ${budgetMs / 1000} s`, 'time-budget')), budgetMs)
    worker.once('message', (message: {plan?: JobPlan; error?: Record<string, unknown>}) => {
      if (message.plan) finish(undefined, message.plan)
      else finish(revive(message.error ?? {}))
    })
    worker.once('error', (error: Error & {code?: string}) => {
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') finish(refused(`reading it needed more than ${PLAN_HEAP_MB} MiB`, 'memory-budget'))
      else finish(new H2KError('H2K_INTERNAL', `Planning ${path} failed in its worker: ${error.message}`, {cause: error}))
    })
    worker.once('exit', (code) => finish(new H2KError('H2K_INTERNAL', `The worker planning ${path} exited (${code}) without an answer.`)))
  })
}

/** The H2KError a worker posted as JSON. */
function revive(json: Record<string, unknown>): H2KError {
  const code = isErrorCode(json.code) ? json.code : 'H2K_INTERNAL'
  return new H2KError(code, typeof json.message === 'string' ? json.message : 'Planning failed.', {
    details: (json.details as Record<string, unknown> | undefined) ?? {},
    suggestions: Array.isArray(json.suggestions) ? (json.suggestions as string[]) : undefined,
  })
}
