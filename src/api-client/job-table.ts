import {escapeControl} from '../render/escape-control.js'

/** A job as the API returns it (openapi.yaml `Job`). */
export interface ApiJob {
  id: string
  name: string
  status: string
  origin: string
  attempts: number
  created_at: string
  source_path: string
  output_path: string
  not_before: string | null
  wait_reason: string | null
  error: {code: string; message: string} | null
}

/** Rows of text in aligned columns (every cell escaped: names come from job files and drops). */
export function table(rows: string[][]): string[] {
  const clean = rows.map((r) => r.map((c) => escapeControl(c)))
  const widths = clean[0]!.map((_, c) => Math.max(...clean.map((r) => r[c]!.length)))
  return clean.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '))
}

export function jobTable(jobs: readonly ApiJob[]): string[] {
  return table([['ID', 'STATUS', 'ORIGIN', 'ATTEMPTS', 'CREATED', 'NAME', 'NOTE'], ...jobs.map((j) => [j.id, j.status, j.origin, String(j.attempts), j.created_at, j.name, j.error ? j.error.code : (j.wait_reason ?? '-')])])
}
