import {SourceDocument} from './document.js'
import {documentKind, loadJobPlan} from './job-plan.js'

export interface ValidateResult {
  file: string
  kind: 'job' | 'batch' | 'manifest' | 'daemon'
  valid: true
  jobs: Array<{name: string; input: string; output_dir: string; format: string}>
}

/** Validate a job file, batch, manifest or daemon config (kind by its top-level keys); throws H2K_JOB_INVALID. */
export async function validateFile(path: string): Promise<ValidateResult> {
  const doc = await SourceDocument.read(path)
  if (documentKind(doc.value) === 'daemon') {
    doc.validate('daemon', 'daemon config')
    return {file: doc.file, jobs: [], kind: 'daemon', valid: true}
  }
  const plan = await loadJobPlan(doc.file)
  return {
    file: plan.file,
    jobs: plan.jobs.map((j) => ({format: j.settings.format, input: j.settings.input, name: j.name, output_dir: j.settings.outputDir})),
    kind: plan.kind,
    valid: true,
  }
}
