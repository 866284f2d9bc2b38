import type {Definition} from './job-definition.js'
import type {JobRow, JobStore} from './store.js'

/** A gate's answer: the job may start now, or not yet (until `notBefore`, ms epoch; null: until something else happens) and why. */
export type GateDecision = {due: true} | {due: false; notBefore: number | null; reason: string}

/**
 * One reason a queued job may not start yet. The pump asks every registered gate, in order, about each
 * queued job (and each retry whose delay is over); the first that says "not yet" wins, and the job stays
 * queued with not_before/wait_reason set from its answer (`ctl jobs` and the API show them). Gates are pure
 * and quick: they read the row, its definition and the time, nothing of the terminal.
 */
export type DispatchGate = (row: JobRow, def: Definition, now: number) => GateDecision

/** Built in: a job submitted with a not-before time (`SubmitOptions.notBefore`) waits for it. */
export const notBeforeGate: DispatchGate = (_row, def, now) => {
  const at = def.policy?.notBefore
  return at !== undefined && at > now ? {due: false, notBefore: at, reason: def.policy?.waitReason ?? `not before ${new Date(at).toISOString()}`} : {due: true}
}

/** The statuses of a parent that mean its dependents can never run (they are skipped). */
export const FAILED_PARENT: ReadonlySet<string> = new Set(['failed', 'dead', 'cancelled', 'skipped'])

/**
 * Built in: a job waits until every job it depends on has succeeded. A parent that ended without success
 * makes the job skipped (dependency-skip.ts does that when the parent ends; until then the gate holds it).
 */
export function dependencyGate(store: Pick<JobStore, 'dependenciesOf' | 'job'>): DispatchGate {
  return (row) => {
    for (const parentId of store.dependenciesOf(row.id)) {
      const parent = store.job(parentId)
      if (!parent) continue
      if (parent.status === 'succeeded') continue
      if (FAILED_PARENT.has(parent.status)) return {due: false, notBefore: null, reason: `dependency failed: ${parent.id}`}
      return {due: false, notBefore: null, reason: `waiting for ${parent.id} (${parent.status})`}
    }
    return {due: true}
  }
}
