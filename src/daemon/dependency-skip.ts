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
      const row = skipOne({emit, log, store}, child, parent)
      skipped.push(row)
      pending.push(child.id)
    }
  }
  return skipped
}

/** Mark one waiting job skipped because of `parentId` (history, error, event). */
function skipOne(ctx: SkipContext, child: JobRow, parentId: string): JobRow {
  const error = new H2KError('H2K_DEPENDENCY_FAILED', `Job ${child.id} was skipped: job ${parentId} it depends on did not succeed.`, {details: {dependency: parentId}})
  const row = ctx.store.transition(child.id, 'skipped', `dependency failed: ${parentId}`, {completed_at: new Date().toISOString(), error: JSON.stringify(error.toJSON()), next_attempt_at: null, not_before: null, wait_reason: null})
  ctx.log('warn', 'job:skipped', {file: row.source_path, job: row.id, parent: parentId}, `dependency failed: ${parentId}`)
  ctx.emit({at: new Date(), job: jobInfo(row), parent: parentId, type: 'job:skipped'})
  return row
}

/** The parent that makes a queued job impossible to run (it ended failed, dead, cancelled or skipped), if any. */
export function failedParent(store: Pick<JobStore, 'dependenciesOf' | 'job'>, id: string): JobRow | undefined {
  for (const parentId of store.dependenciesOf(id)) {
    const parent = store.job(parentId)
    if (parent && FAILED_PARENT.has(parent.status)) return parent
  }
  return undefined
}

/** Skip one queued job whose parent ended badly (a job retried while another parent of it still has not succeeded), and its dependents. */
export function skipForParent(ctx: SkipContext, row: JobRow, parent: JobRow): JobRow[] {
  const done = skipOne(ctx, row, parent.id)
  return [done, ...skipDependents(ctx, done.id)]
}

/** Queued jobs whose parent already ended without success (a crash between the two writes): skip them now. */
export function sweepSkipped(ctx: SkipContext): JobRow[] {
  const out: JobRow[] = []
  for (const row of ctx.store.unfinished()) {
    if (row.status === 'running' || ctx.store.job(row.id)?.status === 'skipped') continue
    const parent = failedParent(ctx.store, row.id)
    if (parent) out.push(...skipForParent(ctx, row, parent))
  }
  return out
}
