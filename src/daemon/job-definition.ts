import {basename, extname} from 'node:path'

import {settingsFromFlags} from '../job-flags.js'
import type {JobSettings} from '@hyper2kvm/plugin-api'
import type {DaemonConfig} from './config.js'
import type {JobPolicy} from './job-policy.js'
import type {JobRow} from './store.js'

/** What the store keeps of a job to run it (`jobs.definition_json`). */
export interface Definition {
  /** A dropped disk, or a job of a job config / manifest (absent in stores of older builds: a disk). */
  from?: 'disk' | 'document'
  settings: JobSettings
  filename: string
  size: number
  hash?: string
  /** Dependencies, its own retry policy, a not-before time (job-policy.ts); absent: the daemon's defaults. */
  policy?: JobPolicy
}

/** A job to record: a dropped disk (settings from the daemon's defaults) or one job of a document (its settings). */
export interface NewJob {
  id: string
  intake: string
  name: string
  input: string
  filename: string
  size: number
  hash?: string
  settings?: JobSettings
  policy?: JobPolicy
}

export const fileType = (name: string): string => extname(name).slice(1).toLowerCase() || 'none'
export const vmName = (file: string): string => basename(file, extname(file)) || file

export function definitionOf(row: JobRow): Definition {
  return JSON.parse(row.definition_json) as Definition
}

/**
 * The settings a job runs with. The daemon owns where outputs go (output_dir/<date>/<vm>/: it clears that
 * directory before every attempt), and whether qemu is sandboxed is the daemon's configuration, never a
 * dropped document's `sandbox` key.
 */
export function definitionFor(job: NewJob, config: DaemonConfig, outputPath: string): Definition {
  const settings: JobSettings = job.settings
    ? {...job.settings, input: job.input, name: job.settings.name ?? job.name, outputDir: outputPath, sandbox: config.sandbox, workDir: config.workDir}
    : settingsFromFlags(job.input, {...config.jobDefaults, name: job.name, 'output-dir': outputPath, sandbox: config.sandbox, 'work-dir': config.workDir})
  return {filename: job.filename, from: job.settings ? 'document' : 'disk', hash: job.hash, settings, size: job.size, ...(job.policy && Object.keys(job.policy).length > 0 ? {policy: job.policy} : {})}
}
