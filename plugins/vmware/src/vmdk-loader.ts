import {H2KError, type LoaderStage, type ProbeClaim, type ProbeInput, detectImageFormat, safeFileStem} from '@hyper2kvm/plugin-api'
import {realpath} from 'node:fs/promises'
import {basename} from 'node:path'

import {findDescriptorNaming, isExtentFileName, isSplitSparseExtentName} from './find-descriptor.js'
import {openVmdkChain} from './open-vmdk-chain.js'

const SPARSE_COMPRESSED = 1 << 16
const SPARSE_MARKERS = 1 << 17

/** The sparse header's variant, from the first sector the probe already has. */
function sparseSubformat(head: Buffer): string {
  if (head.length < 79) return 'monolithicSparse'
  const flags = head.readUInt32LE(8)
  const compressed = head.readUInt16LE(77) === 1 || (flags & (SPARSE_COMPRESSED | SPARSE_MARKERS)) !== 0
  return compressed ? 'streamOptimized' : 'monolithicSparse'
}

function hasEmbeddedDescriptor(head: Buffer): boolean {
  return head.length >= 36 && head.readBigUInt64LE(28) !== 0n
}

function descriptorCreateType(head: Buffer): string | undefined {
  return /^\s*createType\s*=\s*"?(\w+)"?/m.exec(head.toString('latin1'))?.[1]
}

/** Extents of ESXi snapshot deltas, recognised by magic so that the refusal can explain itself. */
function esxiDeltaKind(head: Buffer): 'vmfsSparse' | 'seSparse' | undefined {
  if (head.length >= 4 && head.subarray(0, 4).toString('latin1') === 'COWD') return 'vmfsSparse'
  if (head.length >= 8 && head.readBigUInt64LE(0) === 0xcafebaben) return 'seSparse'
  return undefined
}

interface TopDisk {
  /** The descriptor or sparse file that describes the whole disk. */
  path: string
  /** Set when the user pointed at one of its extents instead. */
  viaExtent?: string
}

/**
 * Which file describes the disk the user meant: the input itself, or - when the input is an extent
 * ("disk-flat.vmdk", "disk-s001.vmdk") - the descriptor beside it that names it.
 */
async function locateTopDisk(input: ProbeInput): Promise<TopDisk> {
  const path = await realpath(input.path)
  const name = basename(path)
  const magic = detectImageFormat(input.head)
  if (magic === 'vmdk-descriptor') return {path}
  if (magic === 'vmdk' && hasEmbeddedDescriptor(input.head) && !isSplitSparseExtentName(name)) return {path}

  const found = await findDescriptorNaming(path)
  if (found) return {path: found.path, viaExtent: path}
  // A sparse file nobody names reads on its own, unless its name says it is one piece of a split disk.
  if (magic === 'vmdk' && (hasEmbeddedDescriptor(input.head) || !isSplitSparseExtentName(name))) return {path}
  throw new H2KError('H2K_EXTENT_MISSING', `${name} is one data file (extent) of a VMware disk, and no descriptor in its folder names it.`, {
    details: {file: path},
    suggestions: ['Copy the disk descriptor (the small .vmdk file without -flat/-sNNN in its name) next to it and convert that.'],
  })
}

/**
 * VMware VMDK disks: monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent{Sparse,Flat},
 * ESXi vmfs/vmfsThin descriptors, and snapshot chains (flattened; with --allow-backing). Recognised by
 * content only - a text file that merely ends in .vmdk is not claimed.
 */
export const vmdkLoader: LoaderStage = {
  description: 'VMware VMDK: sparse, streamOptimized, flat, split, ESXi vmfs/vmfsThin, snapshot chains',
  formats: ['vmdk'],
  kind: 'loader',
  name: 'vmdk',
  async probe(input: ProbeInput): Promise<ProbeClaim | null> {
    if (input.isDirectory || input.size === 0) return null
    const magic = detectImageFormat(input.head)
    if (magic === 'vmdk') return {by: 'content', format: 'vmdk', subformat: sparseSubformat(input.head)}
    if (magic === 'vmdk-descriptor') {
      const createType = descriptorCreateType(input.head)
      return {by: 'content', format: 'vmdk', ...(createType ? {subformat: createType} : {})}
    }
    if (magic !== null) return null
    const delta = esxiDeltaKind(input.head)
    if (delta) return {by: 'content', format: 'vmdk', subformat: delta}
    // Flat extents are raw data: only the descriptor that names them makes them a VMDK.
    if (!isExtentFileName(basename(input.path))) return null
    const found = await findDescriptorNaming(input.path)
    return found ? {by: 'content', format: 'vmdk', subformat: found.descriptor.createType} : null
  },
  async run(ctx) {
    const top = await locateTopDisk(ctx.input)
    const opened = await openVmdkChain(top.path, {workDir: ctx.workDir})
    const label = basename(top.path)
    const notes: string[] = []
    if (top.viaExtent) notes.push(`${basename(top.viaExtent)} is an extent of ${label}; loaded the disk through that descriptor`)
    if (opened.layers.length > 1) notes.push(`flattened a snapshot chain of ${opened.layers.length} disks: ${opened.layers.map((l) => basename(l)).join(' → ')}`)
    return {
      disks: [
        {
          allocatedBytes: opened.allocatedBytes,
          files: opened.files,
          format: 'vmdk',
          label,
          spec: opened.spec,
          subformat: opened.subformat,
        },
      ],
      format: 'vmdk',
      input: ctx.input.path,
      name: safeFileStem(label.replace(/\.vmdk$/i, '')),
      notes,
      subformat: opened.subformat,
    }
  },
}
