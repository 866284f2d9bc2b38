import {statfs} from 'node:fs/promises'

import {H2KError, type JobSettings, type OutputPlan} from '@hyper2kvm/plugin-api'

const MiB = 1024 * 1024

/**
 * What an output may occupy: the source's allocated bytes (never more than the virtual size), plus qcow2
 * metadata. Compression usually needs less, but we plan for incompressible data.
 */
export function estimateOutputBytes(plan: OutputPlan, format: JobSettings['format']): number {
  const virtual = plan.disk.virtualSize ?? plan.disk.allocatedBytes ?? 0
  const data = Math.min(plan.disk.allocatedBytes ?? virtual, virtual)
  const metadata = format === 'raw' ? 0 : Math.ceil(virtual / 8192) + 2 * MiB
  return data + metadata
}

/** Refuse to start a copy that cannot fit, before a single byte is written. */
export async function ensureFreeSpace(outputDir: string, plans: OutputPlan[], format: JobSettings['format']): Promise<{needed: number; available: number}> {
  const needed = plans.reduce((sum, plan) => sum + estimateOutputBytes(plan, format), 0)
  const fs = await statfs(outputDir)
  const available = Number(fs.bavail) * Number(fs.bsize)
  if (needed > available) {
    throw new H2KError('H2K_NO_SPACE', `The output needs about ${Math.ceil(needed / MiB)} MiB but ${outputDir} has ${Math.floor(available / MiB)} MiB free.`, {
      details: {available, needed, outputDir},
      phase: 'convert',
      suggestions: ['Free space or choose another --output-dir.', 'If you know the output compresses well, pass --skip-space-check.'],
    })
  }
  return {available, needed}
}
