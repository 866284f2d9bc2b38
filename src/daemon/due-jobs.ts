import {type SkipContext, failedParent, skipForParent} from './dependency-skip.js'
import type {GateSet} from './gate-set.js'
import type {PumpDependencies} from './pump-dependencies.js'
import type {JobRow} from './store.js'

export interface DueContext extends SkipContext {
  gates: GateSet
  /** Where this pump's dependency questions are answered (the gates' dependency gate reads it too). */
  dependencies: PumpDependencies
  /** Settle the claim of a job that ended (skipped here). */
  settle: (row: JobRow) => Promise<void>
}

/**
 * How many waiting jobs one pump asks the gates about beyond those it starts: enough for any real wave, and
 * a bound on the work of a pump with thousands of queued jobs (the rest are asked on later pumps, oldest first).
 */
export const MAX_ASKED_PER_PUMP = 1000

/**
 * The jobs the pump may start now, oldest first, at most `slots` (0: the pool is full, paused or draining):
 * queued ones and retries whose delay is over, that every gate lets through. The gates are asked about
 * waiting jobs beyond the free slots too (up to MAX_ASKED_PER_PUMP; one whose stored not_before has not
 * come is not asked again), so one they hold says why at once, not only once a slot frees up: it stays
 * queued with not_before/wait_reason saying why (and the gates wake the pump at the earliest not_before). One that a parent's failure makes impossible (re-queued by a retry
 * while another parent has not succeeded) is skipped.
 */
export function dueJobs(ctx: DueContext, isRunning: (id: string) => boolean, slots: number, now: number): JobRow[] {
  const rows = ctx.store.unfinished()
  return ctx.dependencies.during(rows, () => dueAmong(ctx, rows, isRunning, slots, now))
}

function dueAmong(ctx: DueContext, rows: readonly JobRow[], isRunning: (id: string) => boolean, slots: number, now: number): JobRow[] {
  const {dependencies, gates, store} = ctx
  const due: JobRow[] = []
  let wakeAt = Number.POSITIVE_INFINITY
  let asked = 0
  for (const row of rows) {
    if (due.length >= slots && asked >= MAX_ASKED_PER_PUMP) break
    if (isRunning(row.id) || row.status === 'running') continue
    if (row.status === 'retry_wait' && (row.next_attempt_at ?? 0) > now) continue
    // Held by a time (its window, a not-before) that has not come: the stored answer holds, nothing to ask,
    // so a wave of thousands waiting for its window costs a pump almost nothing.
    if (row.not_before !== null && row.not_before > now && row.wait_reason !== null) {
      wakeAt = Math.min(wakeAt, row.not_before)
      continue
    }
    asked += 1
    const parent = failedParent(dependencies, row.id)
    if (parent) {
      for (const skipped of skipForParent(ctx, row, parent)) void ctx.settle(skipped)
      continue
    }
    const decision = gates.decide(row, now)
    if (!decision.due) {
      // Written when it changed: a wave waiting for its window is asked on every pump.
      if (row.not_before !== decision.notBefore || row.wait_reason !== decision.reason) store.setWait(row.id, decision.notBefore, decision.reason)
      if (decision.notBefore !== null) wakeAt = Math.min(wakeAt, decision.notBefore)
      continue
    }
    if (row.not_before !== null || row.wait_reason !== null) store.setWait(row.id, null, null)
    // Due, but no slot is free: it starts on a later pump (the job that ends frees one and pumps).
    if (due.length < slots) due.push(row)
  }
  if (wakeAt !== Number.POSITIVE_INFINITY) gates.wakeAt(wakeAt)
  return due
}
