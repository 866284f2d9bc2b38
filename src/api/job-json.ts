import type {HistoryRow, JobRow} from '../daemon/store.js'

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

/** Columns the job service added (migration 2); absent on a row read before it. */
type ServiceColumns = Partial<{origin: string | null; not_before: number | null; wait_reason: string | null; schedule_id: string | null}>

/** A job row as the API shows it (openapi.yaml `Job`): no definition or raw JSON columns, times as ISO text. */
export function jobJson(row: JobRow): Record<string, unknown> {
  const more = row as JobRow & ServiceColumns
  const notBefore = more.not_before ?? (row.status === 'retry_wait' ? row.next_attempt_at : null)
  return {
    attempts: row.attempts,
    completed_at: row.completed_at,
    created_at: row.created_at,
    error: errorJson(row.error),
    id: row.id,
    name: row.name,
    not_before: notBefore === null ? null : new Date(notBefore).toISOString(),
    origin: more.origin ?? 'drop',
    output_path: row.output_path,
    progress: parsed(row.progress_json),
    schedule_id: more.schedule_id ?? null,
    source_path: row.source_path,
    started_at: row.started_at,
    status: row.status,
    vm_path: row.vm_path,
    wait_reason: more.wait_reason ?? null,
  }
}

export function historyJson(rows: readonly HistoryRow[]): Array<Record<string, unknown>> {
  return rows.map((h) => ({at: h.at, detail: h.detail, from_status: h.from_status, to_status: h.to_status}))
}

/** An attempt row (migration 2, `job_attempts`) as the API shows it. */
export function attemptJson(row: {attempt: number; started_at: string; ended_at?: string | null; outcome?: string | null; error_json?: string | null}): Record<string, unknown> {
  return {attempt: row.attempt, ended_at: row.ended_at ?? null, error: errorJson(row.error_json ?? null), outcome: row.outcome ?? null, started_at: row.started_at}
}

/** A job id out of whatever a dependency list holds (ids, or rows with an id). */
export function idOf(value: unknown): string {
  return typeof value === 'string' ? value : String((value as {id?: unknown; depends_on?: unknown; job_id?: unknown}).id ?? '')
}

export {parsed as parsedObject}
