import {H2KError} from '../errors/h2k-error.js'
import {readAt} from '../fs/read-head.js'

/**
 * What a qcow2 header makes qemu open besides the image itself, read by our own code so that nothing is
 * handed to qemu before we know: the backing file (header field) and the external data file (incompatible
 * feature bit 2 + header extension 0x44415441). qemu resolves a relative data-file name against its own
 * working directory, not the image's, so the only safe way to honour one is to pass the file explicitly.
 */
export interface Qcow2References {
  version: number
  /** The backing file name, as the header writes it (untrusted). */
  backingFile?: string
  /** Incompatible feature bit 2: qemu will not open the image without a data file. */
  externalData: boolean
  /** The data file name from the header extension (untrusted); may be absent even when externalData is set. */
  dataFile?: string
}

const MAGIC = 0x514649fb
const INCOMPAT_DATA_FILE = 4n
const EXT_END = 0
const EXT_DATA_FILE = 0x44415441
/** qemu reads header extensions up to the end of the first cluster (at most 2 MiB). */
const MAX_HEADER_BYTES = 2 * 1024 * 1024
/** qemu refuses backing file names longer than 1023 bytes; data file names are bounded by the cluster. */
const MAX_NAME = 4096

function corrupt(label: string, why: string): H2KError {
  return new H2KError('H2K_INPUT_CORRUPT', `${label}: ${why}.`, {details: {file: label}})
}

/** Parse what qemu may open from a qcow2 header (`head` holds at least the first cluster, or the whole file). */
export function qcow2References(head: Buffer, label: string): Qcow2References {
  if (head.length < 72 || head.readUInt32BE(0) !== MAGIC) throw corrupt(label, 'not a qcow2 header')
  const version = head.readUInt32BE(4)
  const refs: Qcow2References = {externalData: false, version}
  const backingOffset = head.readBigUInt64BE(8)
  const backingSize = head.readUInt32BE(16)
  const clusterBits = head.readUInt32BE(20)
  const clusterBytes = clusterBits >= 9 && clusterBits <= 21 ? 2 ** clusterBits : MAX_HEADER_BYTES
  if (backingOffset !== 0n) {
    if (backingSize === 0 || backingSize > MAX_NAME || backingOffset + BigInt(backingSize) > BigInt(head.length)) {
      // qemu would still try to follow it: a name we cannot read is a name we refuse.
      refs.backingFile = '(unreadable)'
    } else refs.backingFile = head.subarray(Number(backingOffset), Number(backingOffset) + backingSize).toString('utf8')
  }
  if (version < 3) return refs
  if (head.length < 104) throw corrupt(label, 'the qcow2 v3 header is cut short')
  refs.externalData = (head.readBigUInt64BE(72) & INCOMPAT_DATA_FILE) !== 0n
  const headerLength = head.readUInt32BE(100)
  // Extensions end at the backing file name or at the end of the first cluster, as qemu reads them.
  const end = Math.min(head.length, clusterBytes, backingOffset !== 0n && backingOffset < BigInt(head.length) ? Number(backingOffset) : Number.MAX_SAFE_INTEGER)
  let offset = headerLength
  while (offset + 8 <= end) {
    const type = head.readUInt32BE(offset)
    const length = head.readUInt32BE(offset + 4)
    if (type === EXT_END) break
    if (length > end - offset - 8) throw corrupt(label, `qcow2 header extension 0x${type.toString(16)} runs past the header`)
    if (type === EXT_DATA_FILE) {
      if (refs.dataFile !== undefined) throw corrupt(label, 'the qcow2 header names two external data files')
      refs.dataFile = head.subarray(offset + 8, offset + 8 + length).toString('utf8')
    }
    offset += 8 + Math.ceil(length / 8) * 8
  }
  return refs
}

/** Read a qcow2 file's header cluster (at `offset` inside it, for an archive member) and parse its references. */
export async function readQcow2References(file: string, label: string, window?: {offset: number; size: number}): Promise<Qcow2References> {
  const offset = window?.offset ?? 0
  const first = await readAt(file, offset, Math.min(65_536, window?.size ?? 65_536))
  if (first.length < 24) throw corrupt(label, 'the qcow2 header is cut short')
  const clusterBits = first.readUInt32BE(20)
  const wanted = Math.min(MAX_HEADER_BYTES, clusterBits >= 9 && clusterBits <= 21 ? 2 ** clusterBits : MAX_HEADER_BYTES, window?.size ?? MAX_HEADER_BYTES)
  const head = wanted > first.length ? await readAt(file, offset, wanted) : first
  return qcow2References(head, label)
}
