/**
 * What a job document says about when and how often a job runs, beside its conversion settings
 * (`Definition.policy`): dependencies, its own retry policy, and (P6) its time window. Built by
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
}

/** The job document keys policyFromDocument reads (schemas/job.schema.json: per job and, for retry, at batch level). */
export interface PolicyKeys {
  depends_on?: string[]
  retry?: {max_retries?: number; backoff?: BackoffKind; retry_on?: string[]; no_retry_on?: string[]}
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
 * resolves it (resolve-dependencies.ts) and stores ids. `origin` is for keys that differ by origin (P6's
 * override_window may not come from a dropped file).
 */
export function policyFromDocument(job: PolicyKeys, batch: PolicyKeys | undefined, _origin: JobOriginKind): JobPolicy {
  const policy: JobPolicy = {}
  if (job.depends_on !== undefined && job.depends_on.length > 0) policy.dependsOn = [...job.depends_on]
  const retry = batch?.retry || job.retry ? {...batch?.retry, ...job.retry} : undefined
  if (retry) policy.retry = retryPolicy(retry)
  return policy
}
