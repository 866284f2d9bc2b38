import {link, rename, rm, stat, unlink, writeFile} from 'node:fs/promises'

import {H2KError, type OutputPlan} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'

/**
 * Give every `.part` its final name, all or nothing. Without --overwrite a hard link + unlink makes the
 * step fail (instead of replacing) if someone created the final file meanwhile.
 */
export async function commitOutputs(plans: readonly OutputPlan[], overwrite: boolean): Promise<void> {
  const committed: string[] = []
  try {
    for (const plan of plans) {
      if (overwrite) {
        await rename(plan.partPath, plan.finalPath)
      } else {
        await link(plan.partPath, plan.finalPath)
        await unlink(plan.partPath)
      }
      committed.push(plan.finalPath)
    }
  } catch (error) {
    await Promise.all(committed.map((path) => rm(path, {force: true})))
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new H2KError('H2K_OUTPUT_EXISTS', `An output appeared while converting: ${(error as NodeJS.ErrnoException).path ?? ''}`, {cause: error, phase: 'convert'})
    }
    throw mapForeignError(error, {phase: 'convert'})
  }
}

/** Remove every `.part` of a job that did not succeed. */
export async function discardParts(plans: readonly OutputPlan[]): Promise<void> {
  await Promise.all(plans.map((plan) => rm(plan.partPath, {force: true})))
}

/**
 * Write a small file atomically: temp name in the same directory, then rename. With `replace: false` a
 * hard link takes the place of the rename, so a file that appeared meanwhile is not replaced
 * (H2K_OUTPUT_EXISTS), as for the outputs.
 */
export async function writeFileAtomic(path: string, content: string, options: {replace?: boolean} = {}): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`
  try {
    await writeFile(temp, content, {mode: 0o644})
    if (options.replace === false) await link(temp, path)
    else await rename(temp, path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new H2KError('H2K_OUTPUT_EXISTS', `${path} appeared while converting.`, {cause: error, details: {path}, phase: 'convert'})
    }
    throw mapForeignError(error, {path})
  } finally {
    await rm(temp, {force: true})
  }
}

/** Bytes a file really occupies (sparse and compressed outputs are much smaller than their virtual size). */
export async function bytesOnDisk(path: string): Promise<number> {
  const info = await stat(path)
  return info.blocks * 512
}
