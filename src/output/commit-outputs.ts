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
      await placeFile(plan.partPath, plan.finalPath, overwrite)
      committed.push(plan.finalPath)
    }
  } catch (error) {
    await Promise.all(committed.map((path) => rm(path, {force: true})))
    throw mapForeignError(error, {phase: 'convert'})
  }
}

/**
 * Give `from` the name `to`. `replace`: rename over whatever is there. Otherwise a hard link, then the old
 * name goes: a `to` that someone created meanwhile is never replaced (H2K_OUTPUT_EXISTS).
 */
async function placeFile(from: string, to: string, replace: boolean): Promise<void> {
  if (replace) return rename(from, to)
  try {
    await link(from, to)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    throw new H2KError('H2K_OUTPUT_EXISTS', `An output appeared while converting: ${to}`, {cause: error, details: {path: to}, phase: 'convert'})
  }
  await unlink(from)
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
    await placeFile(temp, path, options.replace !== false)
  } catch (error) {
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
