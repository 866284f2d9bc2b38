import {H2KError} from '@hyper2kvm/plugin-api'
import type {DaemonEvent} from './daemon-events.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import {FAILED_PARENT} from './dispatch-gate.js'
import {jobInfo} from './job-info.js'
import type {JobRow, JobStore} from './store.js'

export interface SkipContext {
  store: JobStore
  emit: (event: DaemonEvent) => void
  log: DaemonLogFn
}

/**
 * A job ended without success (failed, dead, cancelled, skipped): every job waiting for it is skipped
 * ("dependency failed: <parent id>"), and theirs in turn. Returns the jobs skipped now (their claims may settle).
 */
export function skipDependents(ctx: SkipContext, parentId: string): JobRow[] {
  const {emit, log, store} = ctx
  const skipped: JobRow[] = []
  const pending = [parentId]
  while (pending.length > 0) {
    const parent = pending.shift()!
    for (const childId of store.dependentsOf(parent)) {
      const child = store.job(childId)
      if (!child || (child.status !== 'queued' && child.status !== 'retry_wait')) continue
      const error = new H2KError('H2K_DEPENDENCY_FAILED', `Job ${child.id} was skipped: job ${parent} it depends on did not succeed.`, {details: {dependency: parent}})
      const row = store.transition(child.id, 'skipped', `dependency failed: ${parent}`, {completed_at: new Date().toISOString(), error: JSON.stringify(error.toJSON()), next_attempt_at: null, not_before: null, wait_reason: null})
      log('warn', 'job:skipped', {file: row.source_path, job: row.id, parent}, `dependency failed: ${parent}`)
      emit({at: new Date(), job: jobInfo(row), parent, type: 'job:skipped'})
      skipped.push(row)
      pending.push(child.id)
    }
  }
  return skipped
}

/** Queued jobs whose parent already ended without success (a crash between the two writes): skip them now. */
export function sweepSkipped(ctx: SkipContext): JobRow[] {
  const out: JobRow[] = []
  for (const row of ctx.store.unfinished()) {
    if (row.status === 'running') continue
    for (const parentId of ctx.store.dependenciesOf(row.id)) {
      const parent = ctx.store.job(parentId)
      if (parent && FAILED_PARENT.has(parent.status)) out.push(...skipDependents(ctx, parent.id))
    }
  }
  return out
}
