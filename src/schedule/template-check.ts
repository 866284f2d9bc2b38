import {isAbsolute} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import type {JobTemplate} from './schedule.js'

/** A template that names a file or directory: what it holds is known only at each run. */
const isFileTemplate = (t: Record<string, unknown>): boolean => 'job_file' in t || 'manifest' in t || 'sweep_dir' in t

/**
 * An inline job template checked when the schedule is created, as the job service checks a submitted
 * document at each run (planJobDocument: the job-file schema, names, windows, retry codes, compression),
 * without looking at the inputs (they may appear before the wave). H2K_JOB_INVALID with each problem's
 * path under `job_template` (violations: path and message). Job files, manifests and sweeps are read only at
 * run time.
 */
export async function checkInlineTemplate(template: JobTemplate, at: string): Promise<void> {
  const t = template as Record<string, unknown>
  if (isFileTemplate(t)) return
  // Loaded here: configuration loading imports the schedule keys on every command, the job-file parser only when needed.
  const [{SourceDocument}, {documentKind, planJobDocument}] = await Promise.all([import('../jobs/document.js'), import('../jobs/job-plan.js')])
  const label = `${at}: job_template`
  if (documentKind(t) !== 'job') throw new H2KError('H2K_JOB_INVALID', `${label}: an inline template is a job or a \`jobs:\` batch (not a manifest or a daemon configuration).`, {details: {violations: [{message: 'not a job document', path: 'job_template'}]}})
  try {
    const plan = await planJobDocument(SourceDocument.parse(JSON.stringify(t, null, 2), label), {baseDir: '/'})
    const relative = plan.jobs.filter((j) => j.inputAsWritten !== undefined && !isAbsolute(j.inputAsWritten))
    if (relative.length > 0) {
      throw new H2KError('H2K_JOB_INVALID', `${label}: inputs must be absolute paths (${relative.map((j) => j.name).join(', ')}).`, {
        details: {violations: relative.map((j) => ({message: 'must be an absolute path', path: `job_template${'jobs' in t ? `.jobs[${plan.jobs.indexOf(j)}]` : ''}.input`}))},
      })
    }
  } catch (error) {
    throw underTemplate(error, label)
  }
}

/** A refusal of the template document: its violations' paths under `job_template`, its message naming the schedule. */
function underTemplate(error: unknown, label: string): unknown {
  if (!(error instanceof H2KError) || error.code !== 'H2K_JOB_INVALID') return error
  const list = (error.details as {violations?: unknown} | undefined)?.violations
  if (!Array.isArray(list)) return error
  const violations = list.map((v: {path?: string; message?: string; line?: number; column?: number}) => ({
    message: v.message ?? '',
    path: !v.path ? 'job_template' : v.path.startsWith('job_template') ? v.path : `job_template.${v.path}`,
  }))
  return new H2KError('H2K_JOB_INVALID', `${label} is not a valid job document:\n${violations.map((v) => `${v.path}: ${v.message}`).join('\n')}`, {details: {violations}})
}
