import {type SkipContext, failedParent, skipForParent} from './dependency-skip.js'
import type {GateSet} from './gate-set.js'
import type {JobRow} from './store.js'

export interface DueContext extends SkipContext {
  gates: GateSet
  /** Settle the claim of a job that ended (skipped here). */
  settle: (row: JobRow) => Promise<void>
}

/**
 * The jobs the pump may start now, oldest first, at most `slots`: queued ones and retries whose delay is
 * over, that every gate lets through. One that a gate holds stays queued with not_before/wait_reason saying
 * why (and the gates wake the pump at the earliest not_before); one that a parent's failure makes impossible
 * (re-queued by a retry while another parent has not succeeded) is skipped.
 */
export function dueJobs(ctx: DueContext, isRunning: (id: string) => boolean, slots: number, now: number): JobRow[] {
  const {gates, store} = ctx
  const due: JobRow[] = []
  let wakeAt = Number.POSITIVE_INFINITY
  for (const row of store.unfinished()) {
    if (due.length >= slots) break
    if (isRunning(row.id) || row.status === 'running') continue
    if (row.status === 'retry_wait' && (row.next_attempt_at ?? 0) > now) continue
    const parent = failedParent(store, row.id)
    if (parent) {
      for (const skipped of skipForParent(ctx, row, parent)) void ctx.settle(skipped)
      continue
    }
    const decision = gates.decide(row, now)
    if (!decision.due) {
      store.setWait(row.id, decision.notBefore, decision.reason)
      if (decision.notBefore !== null) wakeAt = Math.min(wakeAt, decision.notBefore)
      continue
    }
    if (row.not_before !== null || row.wait_reason !== null) store.setWait(row.id, null, null)
    due.push(row)
  }
  if (wakeAt !== Number.POSITIVE_INFINITY) gates.wakeAt(wakeAt)
  return due
}
