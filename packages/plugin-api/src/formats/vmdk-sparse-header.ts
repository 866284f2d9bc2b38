/**
 * The 512-byte SparseExtentHeader of a hosted sparse VMDK, and the rule for the two copies a one-pass
 * stream carries: qemu reads the first one, and when its grain directory is "at end" takes every other
 * field from the copy in the footer (block/vmdk.c, vmdk_open_vmdk4). We validate the footer's fields, so
 * the first header must say the same.
 */
import type {H2KError} from '../errors/h2k-error.js'

export interface Header {
  version: number
  flags: number
  capacity: bigint
  grainSize: bigint
  descriptorOffset: bigint
  descriptorSize: bigint
  numGTEsPerGT: number
  rgdOffset: bigint
  gdOffset: bigint
  overHead: bigint
  newlineBytes: Buffer
  compressAlgorithm: number
}

/** The 512-byte SparseExtentHeader (after its 4-byte magic, which the caller has checked). */
export function parseHeader(sector: Buffer): Header {
  return {
    capacity: sector.readBigUInt64LE(12),
    compressAlgorithm: sector.readUInt16LE(77),
    descriptorOffset: sector.readBigUInt64LE(28),
    descriptorSize: sector.readBigUInt64LE(36),
    flags: sector.readUInt32LE(8),
    gdOffset: sector.readBigUInt64LE(56),
    grainSize: sector.readBigUInt64LE(20),
    newlineBytes: sector.subarray(73, 77),
    numGTEsPerGT: sector.readUInt32LE(44),
    overHead: sector.readBigUInt64LE(64),
    rgdOffset: sector.readBigUInt64LE(48),
    version: sector.readUInt32LE(4),
  }
}

/**
 * Fields that decide what is read: qemu takes them from the footer of a GD_AT_END stream (the descriptor's
 * offset and size: we read the embedded descriptor there), so the first header must say the same.
 */
const MUST_AGREE = ['version', 'capacity', 'grainSize', 'descriptorOffset', 'descriptorSize', 'numGTEsPerGT', 'overHead', 'compressAlgorithm'] as const

export function refuseDisagreement(first: Header, footer: Header, corrupt: (why: string) => H2KError): void {
  for (const field of MUST_AGREE) {
    if (first[field] !== footer[field]) throw corrupt(`the first header and the footer disagree on ${field} (${first[field]} vs ${footer[field]}); qemu and hyper2kvm would read different disks`)
  }
}
