import {
  type BlockdevSpec,
  H2KError,
  NO_PARENT_CID,
  type SparseVmdkFacts,
  type VmdkDescriptor,
  detectImageFormat,
  fileNode,
  formatNode,
  isH2KError,
  parseVmdkDescriptor,
  readAt,
  resolveContainedFile,
  safeFileStem,
  sliceNode,
  validateSparseVmdk,
} from '@hyper2kvm/plugin-api'
import {stat} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {requireReadableCreateType} from './create-types.js'
import {readDescriptorFile} from './read-descriptor.js'
import {resolveExtents} from './resolve-extents.js'
import {writeSanitizedDescriptor} from './sanitized-descriptor.js'

/** VMware allows 32 levels of snapshots; a longer chain is damaged or hostile. */
export const MAX_CHAIN_DEPTH = 32

const SECTOR = 512

export interface ChainOptions {
  /** Where sanitized descriptor copies are written (the job's private directory). */
  workDir: string
}

export interface OpenedVmdk {
  spec: BlockdevSpec
  /** Variant of the top disk: its createType, or the sparse header's kind. */
  subformat: string
  /** Every host file qemu will read, top disk first, without duplicates. */
  files: string[]
  allocatedBytes: number
  /** The disk (descriptor or sparse) file of every chain level, top first. */
  layers: string[]
}

/** One disk of a chain, before its parent is known. */
interface Layer {
  path: string
  descriptor?: VmdkDescriptor
  subformat: string
  files: Array<{path: string; size: number}>
  /** Flat data has no "unallocated" state, so it cannot sit on top of a parent. */
  canHaveParent: boolean
  node(backing: BlockdevSpec | null): BlockdevSpec
}

function embeddedDescriptor(facts: SparseVmdkFacts, name: string): VmdkDescriptor | undefined {
  const text = facts.embeddedDescriptor
  if (text === undefined || text.trim().length === 0) return undefined
  try {
    return parseVmdkDescriptor(text, `${name} (embedded descriptor)`)
  } catch (error) {
    // Text inside a sparse header that is not a descriptor is damage, not an unknown format.
    if (isH2KError(error) && error.code === 'H2K_INPUT_UNRECOGNIZED') throw new H2KError('H2K_INPUT_CORRUPT', error.message, {cause: error, details: error.details})
    throw error
  }
}

/** Where a layer's sanitized descriptor goes: one per chain level, named after the original. */
function copyPath(workDir: string, level: number, path: string): string {
  return join(workDir, `vmdk-${level}-${safeFileStem(basename(path).replace(/\.vmdk$/i, ''))}.vmdk`)
}

async function openSparseLayer(path: string, level: number, workDir: string): Promise<Layer> {
  const name = basename(path)
  const facts = await validateSparseVmdk(path)
  const descriptor = embeddedDescriptor(facts, name)
  const {size} = await stat(path)
  const files = [{path, size}]
  if (descriptor) {
    requireReadableCreateType(descriptor.createType, name)
    if (descriptor.extents.length > 1) {
      throw new H2KError('H2K_INPUT_UNSUPPORTED', `${name} is one extent of a disk split over ${descriptor.extents.length} files; open the disk through its text descriptor.`, {
        details: {file: path},
      })
    }
    // The file is its own extent: qemu ignores the extent names of an embedded descriptor, so they are never opened.
    return {
      canHaveParent: true,
      descriptor,
      files,
      node: (backing) => formatNode('vmdk', fileNode(path), backing),
      path,
      subformat: facts.subformat === 'streamOptimized' ? 'streamOptimized' : descriptor.createType,
    }
  }
  // A bare extent has no CID, and qemu refuses to open a sparse file without one: wrap it in a descriptor.
  const copy = copyPath(workDir, level, path)
  const bare: VmdkDescriptor = {createType: 'monolithicSparse', ddb: {}, extents: [], fields: {}, version: 1}
  await writeSanitizedDescriptor(copy, bare, [{extent: {access: 'RW', line: 0, offset: 0, sectors: facts.capacityBytes / SECTOR, type: 'SPARSE'}, path, size}], name)
  return {canHaveParent: true, files, node: (backing) => formatNode('vmdk', fileNode(copy), backing), path, subformat: facts.subformat}
}

async function openTextLayer(path: string, level: number, workDir: string): Promise<Layer> {
  const name = basename(path)
  const descriptor = await readDescriptorFile(path)
  requireReadableCreateType(descriptor.createType, name)
  const extents = await resolveExtents(path, descriptor)
  const {size} = await stat(path)
  const files = [{path, size}, ...extents.map((e) => ({path: e.path, size: e.size}))]
  const base = {descriptor, files, path, subformat: descriptor.createType}
  const flat = extents.every(({extent}) => extent.type === 'FLAT' || extent.type === 'VMFS')
  const only = extents.length === 1 ? extents[0]! : undefined

  if (only && flat && level === 0) {
    // One flat file: read it as raw, so qemu never parses the descriptor (it rejects vmfsThin anyway).
    // Not for a parent: qemu's vmdk driver refuses to read through a backing node that has no CID.
    const slice = sliceNode(only.path, only.extent.offset * SECTOR, only.extent.sectors * SECTOR)
    return {...base, canHaveParent: false, node: () => slice}
  }
  // Everything else goes through a descriptor we wrote: even a single sparse extent, because split
  // extents carry no CID of their own and qemu will not open them alone.
  const copy = copyPath(workDir, level, path)
  await writeSanitizedDescriptor(copy, descriptor, extents, name)
  return {...base, canHaveParent: !flat, node: (backing) => formatNode('vmdk', fileNode(copy), backing)}
}

/** Open one disk of a chain, whichever form it has (sparse file or text descriptor). */
async function openLayer(path: string, level: number, workDir: string): Promise<Layer> {
  const head = await readAt(path, 0, 4096)
  switch (detectImageFormat(head)) {
    case 'vmdk':
      return openSparseLayer(path, level, workDir)
    case 'vmdk-descriptor':
      return openTextLayer(path, level, workDir)
    default: {
      const kind = head.subarray(0, 4).toString('latin1') === 'COWD' ? 'vmfsSparse' : head.length >= 8 && head.readBigUInt64LE(0) === 0xcafebaben ? 'seSparse' : undefined
      if (kind) {
        throw new H2KError('H2K_INPUT_UNSUPPORTED', `${basename(path)} is an ESXi snapshot delta (${kind}) extent, which hyper2kvm cannot convert.`, {
          details: {file: path},
          suggestions: ['Consolidate the VM snapshots on ESXi (Snapshots → Delete All) and copy the disk again.'],
        })
      }
      throw new H2KError('H2K_INPUT_CORRUPT', `${basename(path)} is neither a sparse VMDK nor a VMDK descriptor.`, {details: {file: path}})
    }
  }
}

/** The parent a layer names, resolved inside the layer's own folder. */
async function parentOf(layer: Layer, options: ChainOptions): Promise<string | undefined> {
  const name = basename(layer.path)
  const hint = layer.descriptor?.parentFileNameHint
  const parentCid = layer.descriptor?.parentCid
  if (hint === undefined) {
    if (parentCid !== undefined && parentCid !== NO_PARENT_CID) {
      throw new H2KError('H2K_INPUT_CORRUPT', `${name} is a delta disk (parentCID ${parentCid}) but does not name its parent (no parentFileNameHint).`, {details: {file: layer.path}})
    }
    return undefined
  }
  if (!layer.canHaveParent) {
    throw new H2KError('H2K_INPUT_CORRUPT', `${name} is a flat disk but names a parent "${hint}"; only sparse disks can be deltas.`, {details: {file: layer.path, parent: hint}})
  }
  try {
    return await resolveContainedFile(dirname(layer.path), hint, {referrer: name, what: 'parent disk'})
  } catch (error) {
    if (isH2KError(error) && error.code === 'H2K_UNSAFE_PATH') {
      throw new H2KError('H2K_UNSAFE_BACKING', error.message, {cause: error, details: error.details})
    }
    throw error
  }
}

/**
 * Open a VMDK disk and, through parentFileNameHint, every parent it is a delta of, and build one nested
 * qemu spec (child over parent over base) so the conversion reads the flattened disk. Every file name in
 * every descriptor is checked before qemu sees it, each parent's CID must match what its child recorded,
 * and the chain is bounded and loop-free.
 */
export async function openVmdkChain(top: string, options: ChainOptions): Promise<OpenedVmdk> {
  const layers: Layer[] = []
  const seen = new Set<string>()
  let path: string | undefined = top
  while (path !== undefined) {
    if (seen.has(path)) {
      throw new H2KError('H2K_INPUT_CORRUPT', `The snapshot chain of ${basename(top)} loops back to ${basename(path)}.`, {details: {chain: layers.map((l) => l.path)}})
    }
    if (layers.length >= MAX_CHAIN_DEPTH) {
      throw new H2KError('H2K_INPUT_UNSUPPORTED', `The snapshot chain of ${basename(top)} is deeper than ${MAX_CHAIN_DEPTH} disks.`, {details: {chain: layers.map((l) => l.path)}})
    }
    seen.add(path)
    const layer = await openLayer(path, layers.length, options.workDir)
    const child = layers.at(-1)
    const expected = child?.descriptor?.parentCid
    const actual = layer.descriptor?.cid
    if (child && expected === NO_PARENT_CID) {
      throw new H2KError('H2K_INPUT_CORRUPT', `${basename(child.path)} names a parent disk, but its parentCID says it has none.`, {details: {child: child.path, parent: path}})
    }
    if (child && expected !== undefined && actual !== undefined && expected !== actual) {
      // VMware refuses such a chain too: the parent changed after the snapshot, so the merge is garbage.
      throw new H2KError('H2K_INPUT_CORRUPT', `${basename(child.path)} was taken from a parent with content id ${expected}, but ${basename(path)} now has ${actual}: the parent was modified after the snapshot.`, {
        details: {child: child.path, expectedCid: expected, parent: path, parentCid: actual},
      })
    }
    layers.push(layer)
    path = await parentOf(layer, options)
  }

  let spec: BlockdevSpec | null = null
  for (const layer of [...layers].reverse()) spec = layer.node(spec)

  const sizes = new Map<string, number>()
  for (const layer of layers) for (const file of layer.files) sizes.set(file.path, file.size)
  return {
    allocatedBytes: [...sizes.values()].reduce((a, b) => a + b, 0),
    files: [...sizes.keys()],
    layers: layers.map((l) => l.path),
    spec: spec!,
    subformat: layers[0]!.subformat,
  }
}
