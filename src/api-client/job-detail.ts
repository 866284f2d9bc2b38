import {escapeControl} from '../render/escape-control.js'
import type {ApiJob} from './job-table.js'

/** GET /api/v1/jobs/{id} and GET /api/v1/dlq/{id} (openapi.yaml `JobDetail`). */
export interface ApiJobDetail {
  job: ApiJob & Record<string, unknown>
  history: Array<{at: string; from_status: string | null; to_status: string; detail: string | null}>
  attempts: Array<{attempt: number; started_at: string; ended_at: string | null; outcome: string | null; error: {code: string; message: string} | null}>
  depends_on: string[]
  dependents: string[]
  report: Record<string, unknown> | null
}

const JOB_KEYS = ['id', 'name', 'status', 'origin', 'attempts', 'source_path', 'output_path', 'created_at', 'started_at', 'completed_at', 'not_before', 'wait_reason'] as const

/** A job detail as text (`jobs show`, `dlq show`): every value escaped (names and messages come from job files and drops). */
export function detailLines(detail: ApiJobDetail): string[] {
  const {job} = detail
  const lines: string[] = []
  for (const key of JOB_KEYS) if (job[key] !== null && job[key] !== undefined) lines.push(`${key.padEnd(13)} ${escapeControl(String(job[key]))}`)
  if (job.error) lines.push(`error         ${escapeControl(`${job.error.code}: ${job.error.message}`)}`)
  if (detail.depends_on.length > 0) lines.push(`depends on    ${detail.depends_on.join(', ')}`)
  if (detail.dependents.length > 0) lines.push(`dependents    ${detail.dependents.join(', ')}`)
  lines.push('history:')
  for (const h of detail.history) lines.push(`  ${h.at}  ${(h.from_status ?? '-').padEnd(10)} → ${h.to_status.padEnd(10)}  ${escapeControl(h.detail ?? '')}`)
  if (detail.attempts.length > 0) lines.push('attempts:')
  for (const a of detail.attempts) lines.push(`  #${a.attempt}  ${a.started_at} → ${a.ended_at ?? 'running'}  ${(a.outcome ?? '').padEnd(9)}  ${a.error ? escapeControl(`${a.error.code}: ${a.error.message}`) : ''}`.trimEnd())
  if (detail.report) lines.push('report: present (--json shows it)')
  return lines
}
