import type {JobResult} from '@hyper2kvm/plugin-api'
import {snakeCaseKeys} from '@hyper2kvm/plugin-api/host'

/**
 * A job result as JSON shows it — `convert --json`, `inspect --json`, `<name>.report.json`, a manifest's
 * report, the daemon's store (`ctl job`): the same fields as JobResult with snake_case keys at every depth
 * (`job_id`, `duration_ms`, `outputs[].virtual_size`, `vm.memory_mib`, `inspection.kernels[].has_virtio` …).
 * The fields other code reads back are typed; their names need no conversion.
 */
export interface JobResultJson {
  [key: string]: unknown
  status: JobResult['status']
  outputs: Array<{path: string; [key: string]: unknown}>
  report?: string
}

/**
 * The one place a job result becomes JSON. The fields stay camelCase in TypeScript (the plugin contract's
 * Inspection and VmMetadata are written by plugins in the language's convention) and are renamed here,
 * once, for everything that writes or prints a result.
 */
export function jobResultJson(result: JobResult): JobResultJson {
  return snakeCaseKeys(result) as JobResultJson
}

/** A result the daemon's store kept (older versions stored camelCase keys): in today's shape. */
export function storedJobResult(json: string): JobResultJson {
  return snakeCaseKeys(JSON.parse(json)) as JobResultJson
}

/**
 * `inspect --plan --json`: the job result with its changes under `plan.changes` (`{inspection, plan: {changes:
 * [...]}, stages, warnings, …}`) — nothing was changed, so there is no top-level `changes` to mistake for a record.
 */
export function planResultJson(result: JobResult): JobResultJson {
  const {changes, ...rest} = result
  return snakeCaseKeys({...rest, plan: {changes}}) as JobResultJson
}
