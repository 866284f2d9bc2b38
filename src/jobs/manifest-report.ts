import type {JobResult} from '@hyper2kvm/plugin-api'

/** `<manifest>.report.json`: what `batch manifest.json` and the manifest-workflow daemon write for a manifest. */
export interface ManifestReport {
  version: '1.0'
  manifest: string
  status: string
  startedAt: string
  durationMs: number
  result?: JobResult
  error?: Record<string, unknown>
  /** The daemon's job id (absent for `batch`). */
  jobId?: string
}

export function manifestReport(fields: Omit<ManifestReport, 'version'>): ManifestReport {
  return {version: '1.0', ...fields}
}
