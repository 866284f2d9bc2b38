import {access} from 'node:fs/promises'
import {join} from 'node:path'

import {H2KError, type JobSettings, type OutputPlan, safeFileStem, type Source} from '@hyper2kvm/plugin-api'

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

/** The base name outputs and the report share: --name, else the loader's VM or file name. */
export function outputStem(job: JobSettings, source: Source): string {
  return job.name ? safeFileStem(job.name) : source.name
}

/**
 * One output per disk: `<name>.<fmt>` for a single disk, `<name>-disk<N>.<fmt>` for several. Each is
 * written as `<file>.part` and renamed when the whole job has succeeded. An existing output (or a
 * `.part` another run may still be writing) is refused unless --overwrite.
 */
export async function planOutputs(job: JobSettings, source: Source): Promise<OutputPlan[]> {
  const stem = outputStem(job, source)
  const plans = source.disks.map((disk, index) => {
    const file = source.disks.length === 1 ? `${stem}.${job.format}` : `${stem}-disk${index + 1}.${job.format}`
    const finalPath = join(job.outputDir, file)
    return {disk, finalPath, index, partPath: `${finalPath}.part`}
  })
  if (!job.overwrite) {
    for (const plan of plans) {
      for (const path of [plan.finalPath, plan.partPath]) {
        if (await exists(path)) {
          throw new H2KError('H2K_OUTPUT_EXISTS', `${path} already exists.`, {details: {path}, phase: 'convert'})
        }
      }
    }
  }
  return plans
}
