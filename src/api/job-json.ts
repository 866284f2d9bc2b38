import type {AttemptRow, HistoryRow, JobRow} from '../daemon/store.js'

/** Keys of a stored error the API shows (a stored error may also hold a stack, with verbose >= 2: never shown). */
const ERROR_KEYS = ['code', 'message', 'suggestions', 'phase', 'stage', 'permanent', 'exit_code'] as const

/** A stored error (JSON text or parsed) as the API shows it, or null. */
export function errorJson(stored: unknown): Record<string, unknown> | null {
  let value = stored
  if (typeof stored === 'string') {
    try {
      value = JSON.parse(stored) as unknown
    } catch {
      return {code: 'H2K_INTERNAL', message: 'The stored error is not readable.'}
    }
  }
  if (value === null || typeof value !== 'object') return null
  const record = value as Record<string, unknown>
  return {code: String(record.code ?? 'H2K_INTERNAL'), message: String(record.message ?? ''), ...Object.fromEntries(ERROR_KEYS.slice(2).filter((k) => record[k] !== undefined).map((k) => [k, record[k]]))}
}

function parsed(text: string | null | undefined): Record<string, unknown> | null {
  if (!text) return null
  try {
    const value = JSON.parse(text) as unknown
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** A job row as the API shows it (openapi.yaml `Job`): no definition or raw JSON columns, times as ISO text. */
export function jobJson(row: JobRow): Record<string, unknown> {
  // A retry's delay is a wait too: shown as not_before (the store keeps it in next_attempt_at).
  const notBefore = row.not_before ?? (row.status === 'retry_wait' ? row.next_attempt_at : null)
  return {
    attempts: row.attempts,
    completed_at: row.completed_at,
    created_at: row.created_at,
    error: errorJson(row.error),
    id: row.id,
    name: row.name,
    not_before: notBefore === null ? null : new Date(notBefore).toISOString(),
    origin: row.origin,
    output_path: row.output_path,
    progress: parsed(row.progress_json),
    schedule_id: row.schedule_id,
    source_path: row.source_path,
    started_at: row.started_at,
    status: row.status,
    vm_path: row.vm_path,
    wait_reason: row.wait_reason,
  }
}

export function historyJson(rows: readonly HistoryRow[]): Array<Record<string, unknown>> {
  return rows.map((h) => ({at: h.at, detail: h.detail, from_status: h.from_status, to_status: h.to_status}))
}

/** An attempt row (migration 2, `job_attempts`) as the API shows it. */
export function attemptJson(row: AttemptRow): Record<string, unknown> {
  return {attempt: row.attempt, ended_at: row.ended_at, error: errorJson(row.error_json), outcome: row.outcome, started_at: row.started_at}
}

export {parsed as parsedObject}
