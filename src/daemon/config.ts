import {resolve} from 'node:path'

import {H2KError} from '../errors/h2k-error.js'
import {type EffectiveConfig, loadConfig} from '../jobs/config.js'
import {SourceDocument} from '../jobs/document.js'
import type {FlagValues} from '../jobs/job-plan.js'

export interface RetryPolicy {
  enabled: boolean
  maxRetries: number
  /** Seconds before the first retry. */
  retryDelay: number
  backoffMultiplier: number
}

/** The daemon's settings: schemas/daemon.schema.json keys, resolved, with command-line flags on top. */
export interface DaemonConfig {
  configFile?: string
  watchDir: string
  outputDir: string
  workDir?: string
  maxConcurrentJobs: number
  /** Seconds a file may keep growing before a warning is logged (it stays pending and is re-checked). */
  fileStableTimeout: number
  /** Milliseconds between two stability checks (1000; tests use less). */
  stabilityIntervalMs: number
  enableDeduplication: boolean
  deduplicationUseMd5: boolean
  archiveProcessed: boolean
  retry: RetryPolicy
  verbose: number
  logFile?: string
  /** Default conversion settings (the config's job keys) as convert flag values. */
  jobDefaults: FlagValues
}

/** The settings SIGHUP may change while jobs run. */
export const LIVE_KEYS = ['maxConcurrentJobs', 'fileStableTimeout', 'enableDeduplication', 'deduplicationUseMd5', 'archiveProcessed', 'retry', 'verbose'] as const

export interface DaemonFlagValues {
  config?: string
  'watch-dir'?: string
  'output-dir'?: string
  'max-concurrent-jobs'?: number
  'stability-interval'?: number
}

interface DaemonKeys {
  watch_dir?: string
  output_dir?: string
  work_dir?: string
  max_concurrent_jobs?: number
  file_stable_timeout?: number
  enable_deduplication?: boolean
  deduplication_use_md5?: boolean
  archive_processed?: boolean
  retry_policy?: {enabled?: boolean; max_retries?: number; retry_delay?: number; backoff_multiplier?: number}
  verbose?: number
  log_file?: string
  workflow_mode?: boolean
  manifest_workflow_mode?: boolean
}

/**
 * Read and validate the daemon configuration (the job-file schema machinery: precise file:line:column
 * messages), then apply the flags. Conversion defaults come from the same loadConfig() as every command.
 */
export async function loadDaemonConfig(flags: DaemonFlagValues): Promise<DaemonConfig> {
  const effective: EffectiveConfig = await loadConfig({configPath: flags.config})
  let keys: DaemonKeys = {}
  let baseDir = process.cwd()
  if (effective.file) {
    const doc = await SourceDocument.read(effective.file)
    keys = doc.value as DaemonKeys
    baseDir = doc.dir
  }
  if (keys.workflow_mode || keys.manifest_workflow_mode) {
    throw new H2KError('H2K_USAGE', 'The workflow and manifest-workflow layouts are not available in this build; use the watch layout (watch_dir).', {
      suggestions: ['Set watch_dir and remove workflow_mode / manifest_workflow_mode.'],
    })
  }
  const path = (value: string | undefined): string | undefined => (value === undefined ? undefined : resolve(baseDir, value))
  const watchDir = flags['watch-dir'] === undefined ? path(keys.watch_dir) : resolve(flags['watch-dir'])
  const outputDir = flags['output-dir'] === undefined ? path(keys.output_dir) : resolve(flags['output-dir'])
  const missing = [watchDir ? undefined : 'watch_dir (--watch-dir)', outputDir ? undefined : 'output_dir (--output-dir)'].filter(Boolean)
  if (missing.length > 0) {
    throw new H2KError('H2K_USAGE', `The daemon needs ${missing.join(' and ')}${effective.file ? ` (not set in ${effective.file})` : ''}.`, {
      suggestions: ['Pass --config daemon.yaml (see examples/daemon.yaml) or --watch-dir and --output-dir.'],
    })
  }
  const retry = keys.retry_policy ?? {}
  const {'output-dir': _outputDir, ...jobDefaults} = effective.flags
  return {
    archiveProcessed: keys.archive_processed ?? true,
    configFile: effective.file,
    deduplicationUseMd5: keys.deduplication_use_md5 ?? false,
    enableDeduplication: keys.enable_deduplication ?? false,
    fileStableTimeout: keys.file_stable_timeout ?? 60,
    jobDefaults,
    logFile: path(keys.log_file),
    maxConcurrentJobs: flags['max-concurrent-jobs'] ?? keys.max_concurrent_jobs ?? 2,
    outputDir: outputDir!,
    retry: {
      backoffMultiplier: retry.backoff_multiplier ?? 2,
      enabled: retry.enabled ?? true,
      maxRetries: retry.max_retries ?? 3,
      retryDelay: retry.retry_delay ?? 30,
    },
    stabilityIntervalMs: flags['stability-interval'] ?? 1000,
    verbose: keys.verbose ?? 1,
    watchDir: watchDir!,
    workDir: path(keys.work_dir),
  }
}
