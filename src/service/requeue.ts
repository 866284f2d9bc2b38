import type {JobRow, JobStore} from '../daemon/store.js'

/**
 * Retry: a failed, dead, cancelled or skipped job goes back to queued with a fresh attempt count (its
 * attempts stay recorded), and so do its skipped dependents, transitively — in one transaction.
 */
export function requeueWithDependents(store: JobStore, id: string): JobRow[] {
  return store.transaction(() => {
    const fresh = {attempts: 0, completed_at: null, error: null, next_attempt_at: null, not_before: null, result_json: null, started_at: null, wait_reason: null}
    const rows = [store.transition(id, 'queued', 'retried', fresh)]
    const pending = [id]
    while (pending.length > 0) {
      for (const child of store.dependentsOf(pending.shift()!)) {
        const row = store.job(child)
        if (row?.status !== 'skipped') continue
        rows.push(store.transition(child, 'queued', `retried with ${id}`, fresh))
        pending.push(child)
      }
    }
    return rows
  })
}
