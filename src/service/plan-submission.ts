import {realpath, stat} from 'node:fs/promises'
import {basename, isAbsolute} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {relativeInside} from '@hyper2kvm/plugin-api/host'
import type {DaemonConfig} from '../daemon/config.js'
import {droppedDocumentPlanOptions} from '../daemon/intake-items.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {realOrSelf} from '../fs/real-or-self.js'
import {SourceDocument} from '../jobs/document.js'
import {documentKind, type JobPlan, type PlannedJob, planJobDocument} from '../jobs/job-plan.js'
import {checkSubmissionSize} from './service-limits.js'

/** A job of a submitted document, ready to record: its input resolved (real path) and allowed. */
export interface SubmittedJob {
  planned: PlannedJob
  /** The input's real path (what the job reads: a symlink swapped later changes nothing). */
  input: string
  size: number
}

/**
 * A parsed job document from the API or a schedule → its jobs, refusing what the drop directory would
 * refuse: the job-file schema (H2K_JOB_INVALID with paths), inputs that are not absolute paths, do not
 * exist, or whose real path is outside allowed_input_dirs (H2K_UNSAFE_PATH; where a symlink points is
 * never said). Manifests and daemon configurations are not job documents here.
 */
export async function planSubmission(document: unknown, config: DaemonConfig, label: string): Promise<{plan: JobPlan; jobs: SubmittedJob[]}> {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new H2KError('H2K_JOB_INVALID', `${label} is not a valid job file: expected a mapping of job keys (or \`jobs: [...]\`).`)
  }
  checkSubmissionSize(document, label)
  if (documentKind(document) !== 'job') throw new H2KError('H2K_JOB_INVALID', `${label} is not a valid job file: a job or a \`jobs:\` batch is expected here (not a manifest or a daemon configuration).`)
  const doc = SourceDocument.parse(JSON.stringify(document, null, 2), label)
  const plan = await planJobDocument(doc, droppedDocumentPlanOptions('/', config.jobDefaults))
  const relative = plan.jobs.filter((j) => j.inputAsWritten !== undefined && !isAbsolute(j.inputAsWritten))
  if (relative.length > 0) {
    throw new H2KError('H2K_JOB_INVALID', `${label} is not a valid job file: inputs must be absolute paths here (${relative.map((j) => j.name).join(', ')}); there is no job file directory to resolve them against.`)
  }
  const roots = await Promise.all(config.allowedInputDirs.map(realOrSelf))
  const jobs: SubmittedJob[] = []
  for (const planned of plan.jobs) {
    const given = planned.settings.input
    let real: string
    try {
      real = await realpath(given)
    } catch (error) {
      throw mapForeignError(error, {path: given})
    }
    if (!roots.some((root) => relativeInside(root, real) !== undefined)) {
      // Where a symlink points is not said: the message names only the path the document gave.
      throw new H2KError('H2K_UNSAFE_PATH', `${given}${real === given ? '' : ' (a symbolic link, or a path through one)'} is outside allowed_input_dirs${config.allowedInputDirs.length > 0 ? ` (${config.allowedInputDirs.join(', ')})` : ' (none configured)'}; jobs submitted to the daemon may read only there.`, {
        details: {allowedInputDirs: config.allowedInputDirs, input: given},
        suggestions: ['Put the disk under a directory of allowed_input_dirs in the daemon configuration (or add its directory there).'],
      })
    }
    const info = await stat(real)
    if (!info.isFile()) throw new H2KError('H2K_INPUT_NOT_FOUND', `${given} is not a regular file.`, {details: {input: given}})
    jobs.push({input: real, planned: {...planned, settings: {...planned.settings, input: real}}, size: info.size})
  }
  return {jobs, plan}
}

export const inputFileName = (job: SubmittedJob): string => basename(job.input)
