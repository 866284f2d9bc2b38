import type {StageRegistry} from '../stages/stage-registry.js'
import {resolveStageOptions} from '../stages/stage-options.js'
import {SourceDocument} from './document.js'
import {documentKind, loadJobPlan} from './job-plan.js'
import {documentStageOptions} from './stage-option-layer.js'

export interface ValidateResult {
  file: string
  kind: 'job' | 'batch' | 'manifest' | 'daemon'
  valid: true
  jobs: Array<{name: string; input: string; output_dir: string; format: string}>
}

/**
 * Validate a job file, batch, manifest or daemon config (kind by its top-level keys); throws H2K_JOB_INVALID.
 * With the stage registry, `stage_options` are checked against the installed stages' schemas too
 * (H2K_STAGE_OPTIONS_INVALID, each problem with its file:line:column).
 */
export async function validateFile(path: string, registry?: StageRegistry): Promise<ValidateResult> {
  const doc = await SourceDocument.read(path)
  if (documentKind(doc.value) === 'daemon') {
    doc.validate('daemon', 'daemon config')
    const layer = documentStageOptions(doc, ['stage_options'], (doc.value as {stage_options?: unknown}).stage_options)
    if (registry && layer) await resolveStageOptions(registry, {stageOptionSources: layer.sources, stageOptions: layer.values})
    // Schedules as the daemon reads them (cron, zone, window, inline template): a wave's typo is found now, not on its night.
    const {parseSchedule} = await import('../schedule/schedule-keys.js')
    const schedules = (doc.value as {schedules?: unknown}).schedules
    if (Array.isArray(schedules)) for (const [index, item] of schedules.entries()) await parseSchedule(item, {baseDir: doc.dir, source: 'config', where: `${doc.file}: schedules[${index}]`})
    return {file: doc.file, jobs: [], kind: 'daemon', valid: true}
  }
  const plan = await loadJobPlan(doc.file)
  if (registry) for (const job of plan.jobs) await resolveStageOptions(registry, job.settings)
  return {
    file: plan.file,
    jobs: plan.jobs.map((j) => ({format: j.settings.format, input: j.settings.input, name: j.name, output_dir: j.settings.outputDir})),
    kind: plan.kind,
    valid: true,
  }
}
