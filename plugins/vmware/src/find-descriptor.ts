import {type VmdkDescriptor, detectImageFormat, readAt} from '@hyper2kvm/plugin-api'
import {lstat, readdir} from 'node:fs/promises'
import {basename, dirname, extname, join} from 'node:path'

import {decodeDescriptor} from './read-descriptor.js'

/** Data files of VMware disks: "disk-flat.vmdk" (flat), "disk-s001.vmdk" / "disk-f001.vmdk" (split), ESXi deltas. */
const EXTENT_NAME = /^(.+?)-(flat|s\d{3}|f\d{3}|delta|sesparse)\.vmdk$/i

/** Descriptors are a few KiB; a bigger sibling is not worth reading while looking for one. */
const MAX_CANDIDATE_BYTES = 64 * 1024
/** Bound the directory scan: a VM folder holds tens of files, not thousands. */
const MAX_CANDIDATES = 256

/** True for names VMware gives the data files of a disk (as opposed to its descriptor). */
export function isExtentFileName(name: string): boolean {
  return EXTENT_NAME.test(name)
}

/** True for the extents of a split sparse disk, which are useless without their descriptor. */
export function isSplitSparseExtentName(name: string): boolean {
  return /-s\d{3}\.vmdk$/i.test(name)
}

export interface FoundDescriptor {
  path: string
  descriptor: VmdkDescriptor
}

async function descriptorAt(path: string): Promise<VmdkDescriptor | undefined> {
  const info = await lstat(path).catch(() => undefined)
  // Only plain files of the same folder: a symlinked "descriptor" could lead anywhere.
  if (!info?.isFile() || info.size === 0 || info.size > MAX_CANDIDATE_BYTES) return undefined
  const bytes = await readAt(path, 0, info.size)
  if (detectImageFormat(bytes) !== 'vmdk-descriptor') return undefined
  try {
    return decodeDescriptor(bytes, basename(path))
  } catch {
    return undefined // a broken neighbour is not the descriptor we are looking for
  }
}

/**
 * Find the text descriptor in the same folder that names `extentPath` as one of its extents, so that
 * pointing at "disk-flat.vmdk" (or "disk-s001.vmdk") loads the whole disk. The conventional name
 * ("disk.vmdk") is tried first, then the other small .vmdk files in name order, so the answer is
 * deterministic.
 */
export async function findDescriptorNaming(extentPath: string): Promise<FoundDescriptor | undefined> {
  const folder = dirname(extentPath)
  const name = basename(extentPath)
  const names = (candidate: VmdkDescriptor): boolean => candidate.extents.some((extent) => extent.filename === name)

  const match = EXTENT_NAME.exec(name)
  const conventional = match ? join(folder, `${match[1]}${extname(name)}`) : undefined
  if (conventional) {
    const descriptor = await descriptorAt(conventional)
    if (descriptor && names(descriptor)) return {descriptor, path: conventional}
  }

  const entries = await readdir(folder).catch(() => [] as string[])
  const candidates = entries
    .filter((entry) => entry.toLowerCase().endsWith('.vmdk') && entry !== name && join(folder, entry) !== conventional)
    .sort()
    .slice(0, MAX_CANDIDATES)
  for (const entry of candidates) {
    const path = join(folder, entry)
    const descriptor = await descriptorAt(path)
    if (descriptor && names(descriptor)) return {descriptor, path}
  }
  return undefined
}
