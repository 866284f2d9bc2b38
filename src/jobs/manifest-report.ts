import type {JobResultJson} from '../output/job-result-json.js'

/** `<manifest>.report.json`: what `batch manifest.json` and the manifest-workflow daemon write for a manifest. */
export interface ManifestReport {
  version: '1.0'
  manifest: string
  status: string
  started_at: string
  duration_ms: number
  result?: JobResultJson
  error?: Record<string, unknown>
  /** The daemon's job id (absent for `batch`). */
  job_id?: string
}

export function manifestReport(fields: {manifest: string; status: string; startedAt: string; durationMs: number; result?: JobResultJson; error?: Record<string, unknown>; jobId?: string}): ManifestReport {
  return {
    version: '1.0',
    manifest: fields.manifest,
    status: fields.status,
    started_at: fields.startedAt,
    duration_ms: fields.durationMs,
    ...(fields.result === undefined ? {} : {result: fields.result}),
    ...(fields.error === undefined ? {} : {error: fields.error}),
    ...(fields.jobId === undefined ? {} : {job_id: fields.jobId}),
  }
}
