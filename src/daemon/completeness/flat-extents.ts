import {looksLikeVmdkDescriptor} from '@hyper2kvm/plugin-api/host'
import {parseVmdkDescriptor} from '@hyper2kvm/plugin-api'
import {COMPLETE, type Completeness, incomplete} from './byte-source.js'

/** Text descriptors are a few KiB; more is not one. */
export const DESCRIPTOR_HEAD = 64 * 1024

/**
 * Have the raw extents a VMDK text descriptor names arrived whole? A FLAT (or VMFS) extent has no end of
 * its own, but the descriptor says how long it is: (offset + sectors) × 512 bytes. `sizeOf` answers for an
 * extent name as the descriptor spells it: the size of that file when it is one of the item's own files,
 * undefined otherwise (not there yet, or not ours: the intake and the loader deal with those).
 * A descriptor that does not parse is "complete" here: the loader refuses it with a reason.
 */
export function flatExtentsCompleteness(head: Buffer, sizeOf: (filename: string) => number | undefined): Completeness {
  if (!looksLikeVmdkDescriptor(head)) return COMPLETE
  let descriptor
  try {
    descriptor = parseVmdkDescriptor(head.toString('utf8'))
  } catch {
    return COMPLETE // damaged: refused by the loader, with the reason
  }
  const short = descriptor.extents.filter((extent) => {
    if ((extent.type !== 'FLAT' && extent.type !== 'VMFS') || extent.filename === undefined) return false
    const size = sizeOf(extent.filename)
    return size !== undefined && size < (extent.offset + extent.sectors) * 512
  })
  return short.length === 0 ? COMPLETE : incomplete(`${short.length} flat extent(s) are shorter than the descriptor declares so far`)
}
