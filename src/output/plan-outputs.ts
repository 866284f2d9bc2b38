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

/** `<name>.report.json` in the output directory: named from the same stem as the disks. */
export function reportPath(job: JobSettings, source: Source): string {
  return join(job.outputDir, `${outputStem(job, source)}.report.json`)
}

/** `<name>.xml` in the output directory (--emit libvirt): the libvirt domain, named like the disks. */
export function domainXmlPath(job: JobSettings, source: Source): string {
  return join(job.outputDir, `${outputStem(job, source)}.xml`)
}

/** The files a job writes beside its disks: the report, and what --emit asks for. */
function sideFiles(job: JobSettings, source: Source): string[] {
  return [reportPath(job, source), ...(job.emit?.includes('libvirt') ? [domainXmlPath(job, source)] : [])]
}

/**
 * One output per disk: `<name>.<fmt>` for a single disk, `<name>-disk<N>.<fmt>` for several. Each is
 * written as `<file>.part` and renamed when the whole job has succeeded. An existing output (or a
 * `.part` another run may still be writing) is refused unless --overwrite, and so is an existing
 * `<name>.report.json` (and `<name>.xml` with --emit libvirt): the report is an output like the others
 * (converting the same VM to another format into the same directory used to replace the first run's report silently).
 */
export async function planOutputs(job: JobSettings, source: Source): Promise<OutputPlan[]> {
  const stem = outputStem(job, source)
  const plans = source.disks.map((disk, index) => {
    const file = source.disks.length === 1 ? `${stem}.${job.format}` : `${stem}-disk${index + 1}.${job.format}`
    const finalPath = join(job.outputDir, file)
    return {disk, finalPath, index, partPath: `${finalPath}.part`}
  })
  if (!job.overwrite) {
    for (const path of [...plans.flatMap((plan) => [plan.finalPath, plan.partPath]), ...sideFiles(job, source)]) {
      if (await exists(path)) {
        throw new H2KError('H2K_OUTPUT_EXISTS', `${path} already exists.`, {details: {path}, phase: 'convert'})
      }
    }
  }
  return plans
}
