import {tableLines} from '../ctl/job-table.js'

/** A job as the API returns it (openapi.yaml `Job`). */
export interface ApiJob {
  id: string
  name: string
  status: string
  origin: string
  attempts: number
  created_at: string
  started_at: string | null
  completed_at: string | null
  source_path: string
  output_path: string
  not_before: string | null
  wait_reason: string | null
  error: {code: string; message: string} | null
}

export function jobTable(jobs: readonly ApiJob[]): string[] {
  return tableLines(['ID', 'STATUS', 'ORIGIN', 'ATTEMPTS', 'CREATED', 'NAME', 'NOTE'], jobs.map((j) => [j.id, j.status, j.origin, String(j.attempts), j.created_at, j.name, j.error ? j.error.code : (j.wait_reason ?? '-')]))
}
