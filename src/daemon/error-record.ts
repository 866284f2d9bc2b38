import {statfs} from 'node:fs/promises'
import {freemem} from 'node:os'
import {join} from 'node:path'

import {type ErrorCode} from '@hyper2kvm/plugin-api'
import {ERROR_CATALOG, snakeCaseKeys} from '@hyper2kvm/plugin-api/host'
import type {LayoutKind} from './layout.js'
import type {RetryPolicy} from './config.js'
import type {JobRow} from './store.js'

/** H2KError.toJSON() as the store keeps it in `jobs.error` (snake_case keys; older versions stored camelCase). */
export interface StoredError {
  code: ErrorCode
  message: string
  exit_code?: number
  suggestions?: string[]
  phase?: string
  stage?: string
  details?: Record<string, unknown>
  stack?: string
}

/** The terminal statuses a claim settles to failed/ for (with an error file): failed, dead, cancelled, skipped. */
export const ENDED_BADLY: ReadonlySet<string> = new Set(['failed', 'dead', 'cancelled', 'skipped'])

export function storedError(row: JobRow): StoredError {
  try {
    return snakeCaseKeys(JSON.parse(row.error ?? '')) as StoredError
  } catch {
    return {code: 'H2K_INTERNAL', message: row.error ?? 'unknown error'}
  }
}

export interface ErrorRecordInput {
  layout: LayoutKind
  /** The directory the error file and the failed files are in. */
  dir: string
  /** The claim's files, relative to `dir`, main first. */
  files: string[]
  /** Size of the main file in bytes. */
  size: number
  inbox: string
  /** Every failed job of the claim (a batch may fail several). */
  failed: JobRow[]
  /** The claim's other jobs. */
  others: JobRow[]
  retry: RetryPolicy
  verbose: number
  outputDir: string
}

/**
 * `<file>.error.json`: the seed's fields (filename, filepath, file_size_mb, timestamp, error, phase,
 * exception_traceback, suggestion, system_info{disk_space_free_gb, memory_available_gb}, retry_info{retry_count,
 * max_retries, next_retry_at}) with ours beside them (error_code, exit_code, permanent, stage, suggestions,
 * details, the claim's files, for a batch every job); in the workflow layouts also 001's workflow fields
 * (job_id, original_name, failed_at, exception, status: "failed"). Suggestions come from the error, else from
 * the catalog.
 */
export async function errorRecord(input: ErrorRecordInput): Promise<Record<string, unknown>> {
  const first = input.failed[0]!
  const error = storedError(first)
  const permanent = ERROR_CATALOG[error.code]?.permanent ?? false
  const suggestions = error.suggestions && error.suggestions.length > 0 ? error.suggestions : [...(ERROR_CATALOG[error.code]?.suggestions ?? [])]
  // freemem() is MemAvailable on Linux (libuv), free plus reclaimable cache.
  const fs = await statfs(input.outputDir).catch(() => undefined)
  const main = input.files[0]!
  const {retry} = input
  return {
    filename: main,
    filepath: join(input.dir, main),
    original_path: join(input.inbox, main),
    files: input.files,
    layout: input.layout,
    file_size_mb: Math.round((input.size / 1024 / 1024) * 100) / 100,
    timestamp: new Date().toISOString(),
    job_id: first.id,
    error: error.message,
    error_code: error.code,
    exit_code: error.exit_code ?? ERROR_CATALOG[error.code]?.exitCode ?? null,
    permanent,
    phase: error.phase ?? null,
    stage: error.stage ?? null,
    // The seed's traceback: our stack (recorded with verbose >= 2; its first line is the error's own message,
    // which never quotes refused content), else null — a stack says nothing to a dropper and costs bytes.
    exception_traceback: input.verbose >= 2 && error.stack ? error.stack : null,
    suggestion: suggestions[0] ?? null,
    suggestions,
    details: error.details ?? {},
    // The seed's disk_space_free_gb and memory_available_gb (of output_dir's filesystem; no python_version:
    // node_version says what runs), ours in MB beside them.
    system_info: {
      disk_space_free_gb: fs ? Math.round(((fs.bavail * fs.bsize) / 1024 ** 3) * 100) / 100 : null,
      memory_available_gb: Math.round((freemem() / 1024 ** 3) * 100) / 100,
      available_memory_mb: Math.round(freemem() / 1024 / 1024),
      free_disk_mb: fs ? Math.round((fs.bavail * fs.bsize) / 1024 / 1024) : null,
      node_version: process.version,
      platform: process.platform,
    },
    // Written when the item has failed for good (it stays in the inbox while retries are pending): the seed's
    // retry_count (retries made) and next_retry_at (null: no retry follows), ours beside them.
    retry_info: {
      retry_count: Math.max(0, first.attempts - 1),
      max_retries: retry.maxRetries,
      next_retry_at: null,
      attempts: first.attempts,
      retry_enabled: retry.enabled,
      retried: first.attempts > 1,
      reason_not_retried:
        first.status === 'cancelled' ? 'cancelled' : first.status === 'skipped' ? 'dependency failed' : first.status === 'dead' ? 'max_retries reached' : permanent ? 'permanent error' : !retry.enabled ? 'retry disabled' : first.attempts > retry.maxRetries ? 'max_retries reached' : null,
    },
    ...(input.layout === 'watch'
      ? {}
      : {
          // 001's workflow error metadata. job_id (above) is the store's id (`ctl job <id>`), not the file stem.
          original_name: main,
          failed_at: first.completed_at ?? new Date().toISOString(),
          // The stack with verbose >= 2, else the error in one line (code and message).
          exception: input.verbose >= 2 && error.stack ? error.stack : `${error.code}: ${error.message}`,
          status: 'failed',
        }),
    ...(input.failed.length + input.others.length > 1
      ? {
          jobs: [...input.failed, ...input.others].map((row) => ({
            job_id: row.id,
            name: row.name,
            status: row.status,
            ...(ENDED_BADLY.has(row.status) ? {error_code: storedError(row).code, error: storedError(row).message} : {output_path: row.output_path}),
          })),
        }
      : {}),
  }
}
