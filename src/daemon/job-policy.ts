import type {WindowSpec} from '../schedule/time-window.js'

/**
 * What a job document says about when and how often a job runs, beside its conversion settings
 * (`Definition.policy`): dependencies, its own retry policy, and its time window. Built by
 * policyFromDocument() for jobs of the API, schedules and dropped job files alike.
 */
export type BackoffKind = 'exponential' | 'fixed' | 'none'

export interface JobRetryPolicy {
  maxRetries?: number
  backoff?: BackoffKind
  /** Error codes retried even when the catalog calls them permanent. */
  retryOn?: string[]
  /** Error codes never retried. */
  noRetryOn?: string[]
}

export interface JobPolicy {
  /** Ids of the jobs this one waits for (names resolved at submit). */
  dependsOn?: string[]
  retry?: JobRetryPolicy
  /** Not started before this instant (ms epoch; SubmitOptions.notBefore), and why. */
  notBefore?: number
  waitReason?: string
  /** the window the job may start in (schedule/time-window.ts), checked by the window gate. */
  window?: WindowSpec
  /** a running job whose window closes: finish (default) or cancel. */
  windowEnd?: 'cancel' | 'finish'
  /** start even outside the window (API, `schedule trigger --override-window`; never from a dropped file). */
  overrideWindow?: boolean
}

/** The job document keys policyFromDocument reads (schemas/job.schema.json: per job and, for retry, at batch level). */
export interface PolicyKeys {
  depends_on?: string[]
  retry?: {max_retries?: number; backoff?: BackoffKind; retry_on?: string[]; no_retry_on?: string[]}
  window?: WindowSpec
  window_end?: 'cancel' | 'finish'
  override_window?: boolean
}

export type JobOriginKind = 'drop' | 'api' | 'schedule'

function retryPolicy(keys: NonNullable<PolicyKeys['retry']>): JobRetryPolicy {
  return {
    ...(keys.max_retries === undefined ? {} : {maxRetries: keys.max_retries}),
    ...(keys.backoff === undefined ? {} : {backoff: keys.backoff}),
    ...(keys.retry_on === undefined ? {} : {retryOn: [...keys.retry_on]}),
    ...(keys.no_retry_on === undefined ? {} : {noRetryOn: [...keys.no_retry_on]}),
  }
}

/**
 * A job's policy from its document keys: `job` is the job's own keys, `batch` the document's top level (a
 * job's `retry` replaces the batch's key by key). `depends_on` is kept as written (names or ids): the caller
 * resolves it (resolve-dependencies.ts) and stores ids. `origin` is for keys that differ by origin (the
 * override_window may not come from a dropped file).
 */
export function policyFromDocument(job: PolicyKeys, batch: PolicyKeys | undefined, origin: JobOriginKind): JobPolicy {
  const policy: JobPolicy = {}
  if (job.depends_on !== undefined && job.depends_on.length > 0) policy.dependsOn = [...job.depends_on]
  const retry = batch?.retry || job.retry ? {...batch?.retry, ...job.retry} : undefined
  if (retry) policy.retry = retryPolicy(retry)
  Object.assign(policy, windowPolicy(job, batch, origin))
  return policy
}

/**
 * The window keys (a job's own win over its batch's). `override_window` is an emergency override for
 * the API and schedule triggers: a dropped job file may not set it, so for origin drop it is left out (the
 * planner logs that it ignored it: droppedOverrideIgnored).
 */
function windowPolicy(job: PolicyKeys, batch: PolicyKeys | undefined, origin: JobOriginKind): Pick<JobPolicy, 'window' | 'windowEnd' | 'overrideWindow'> {
  const window = job.window ?? batch?.window
  const windowEnd = job.window_end ?? batch?.window_end
  const override = job.override_window ?? batch?.override_window
  return {
    ...(window === undefined ? {} : {window}),
    ...(windowEnd === undefined ? {} : {windowEnd}),
    ...(override === true && origin !== 'drop' ? {overrideWindow: true} : {}),
  }
}

/** Whether a dropped job's document asked for override_window (which policyFromDocument leaves out for drops). */
export function droppedOverrideIgnored(job: PolicyKeys, batch: PolicyKeys | undefined): boolean {
  return (job.override_window ?? batch?.override_window) === true
}
