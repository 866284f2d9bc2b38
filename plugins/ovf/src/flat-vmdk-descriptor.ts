import {stat} from 'node:fs/promises'
import {dirname} from 'node:path'

import {formatNode, H2KError, resolveContainedFile, sliceNode} from '@hyper2kvm/plugin-api'

import type {DiskInFile} from '@hyper2kvm/plugin-api'

/** Descriptors are a few hundred bytes; we read at most this much of one. */
const DESCRIPTOR_LIMIT = 64 * 1024

interface ExtentLine {
  access: string
  sectors: number
  type: string
  file: string
  offsetSectors: number
}

function unsupported(label: string, why: string): H2KError {
  return new H2KError('H2K_INPUT_UNSUPPORTED', `${label}: ${why}`, {
    details: {descriptor: label},
    suggestions: ['Give hyper2kvm the .vmdk descriptor itself (the VMware loader reads every VMDK layout), or export the VM as an OVA with ovftool.'],
  })
}

/**
 * The one text-descriptor layout an OVF directory can use without the VMware loader: a single FLAT (or
 * VMFS) extent, no parent. It is plain raw data, opened as a raw window of the extent file, which must sit
 * next to the descriptor. Anything else (sparse or split extents, deltas) is refused as unsupported here.
 */
export async function openFlatVmdkDescriptor(descriptorPath: string, content: Buffer, label: string): Promise<DiskInFile & {files: string[]}> {
  const text = content.subarray(0, DESCRIPTOR_LIMIT).toString('latin1')
  const createType = /^\s*createType\s*=\s*"([^"]*)"/im.exec(text)?.[1] ?? 'unknown'
  if (/^\s*parentFileNameHint\s*=/im.test(text) || /^\s*parentCID\s*=\s*(?!ffffffff\b)[0-9a-f]+/im.test(text)) {
    throw new H2KError('H2K_UNSAFE_BACKING', `${label} is a VMDK delta (snapshot) disk; its parent is not part of the OVF.`, {
      details: {descriptor: label},
      suggestions: ['Consolidate the snapshots on the source side and export the VM again.'],
    })
  }
  const extents: ExtentLine[] = []
  for (const match of text.matchAll(/^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?/gim)) {
    extents.push({access: match[1] ?? '', file: match[4] ?? '', offsetSectors: Number(match[5] ?? 0), sectors: Number(match[2]), type: (match[3] ?? '').toUpperCase()})
  }
  const extent = extents[0]
  if (extents.length !== 1 || !extent || !['FLAT', 'VMFS'].includes(extent.type) || extent.file === '') {
    throw unsupported(label, `a ${createType} VMDK descriptor with ${extents.length} extent(s) is not a single flat extent, the only layout read inside an OVF directory.`)
  }
  const extentPath = await resolveContainedFile(dirname(descriptorPath), extent.file, {referrer: label, what: 'extent'})
  const offset = extent.offsetSectors * 512
  const size = extent.sectors * 512
  if (!Number.isSafeInteger(offset + size) || size === 0) throw new H2KError('H2K_INPUT_CORRUPT', `${label}: the extent line has an impossible size or offset.`)
  const {size: extentSize} = await stat(extentPath)
  if (extentSize < offset + size) {
    throw new H2KError('H2K_INPUT_CORRUPT', `${label}: extent "${extent.file}" is ${extentSize} bytes, but the descriptor needs ${offset + size}: it is truncated.`, {
      details: {extent: extentPath, expected: offset + size, actual: extentSize},
    })
  }
  return {files: [descriptorPath, extentPath], format: 'vmdk', spec: formatNode('raw', sliceNode(extentPath, offset, size)), subformat: createType}
}
