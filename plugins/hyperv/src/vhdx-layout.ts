/**
 * Read-only parser of the VHDX container structures ([MS-VHDX] v1.0): file identifier, headers, region table,
 * metadata and BAT. It never reads payload data and never loads the whole file: every read is a bounded
 * positional read through a FileHandle, and every offset and size taken from the file is checked against the
 * file size and the limits of the specification before it is used.
 *
 * The result describes which guest byte ranges have their data in THIS file (`runs`). For a differencing
 * disk (HasParent), ranges that are not listed come from the parent; for a fixed or dynamic disk they read as
 * zeros.
 */
import {readExact} from '@hyper2kvm/plugin-api'
import {open, type FileHandle} from 'node:fs/promises'
import {crc32c} from './crc32c.js'

const KiB = 1024
const MiB = 1024 * KiB
const TiB = 1024 * 1024 * MiB

/** Largest virtual disk the specification allows. */
export const VHDX_MAX_VIRTUAL_SIZE = 64 * TiB

const HEADER_OFFSETS = [64 * KiB, 128 * KiB] as const
const HEADER_SIZE = 4 * KiB
const REGION_TABLE_OFFSETS = [192 * KiB, 256 * KiB] as const
const REGION_TABLE_SIZE = 64 * KiB
const REGION_TABLE_MAX_ENTRIES = 2047
const METADATA_TABLE_SIZE = 64 * KiB
const METADATA_TABLE_MAX_ENTRIES = 2047
const METADATA_ITEM_MAX_LENGTH = 1 * MiB
const SECTOR_BITMAP_BLOCK_SIZE = 1 * MiB
const MIN_BLOCK_SIZE = 1 * MiB
const MAX_BLOCK_SIZE = 256 * MiB
/** BAT entries read per positional read while walking the BAT. */
const BAT_WINDOW_ENTRIES = 64 * KiB

/** Region and metadata item identifiers, formatted as by {@link formatGuid}. */
export const VHDX_GUIDS = {
  batRegion: '2DC27766-F623-4200-9D64-115E9BFD4A08',
  metadataRegion: '8B7CA206-4790-4B9A-B8FE-575F050F886E',
  fileParameters: 'CAA16737-FA36-4D43-B3B6-33F0AA44E76B',
  virtualDiskSize: '2FA54224-CD1B-4876-B211-5DBED83BF4B8',
  virtualDiskId: 'BECA12AB-B2E6-4523-93EF-C309E000C746',
  logicalSectorSize: '8141BF1D-A96F-4709-BA47-F233A8FAAB5F',
  physicalSectorSize: 'CDA348C7-445D-4471-9CC9-E9885251C556',
  parentLocator: 'A8D35F2D-B30B-454D-ABF7-D3D84834AB0C',
  vhdxParentLocatorType: 'B04AEFB7-D19E-4A81-B789-25B8E9445913',
} as const

const KNOWN_METADATA_ITEMS: ReadonlySet<string> = new Set([
  VHDX_GUIDS.fileParameters,
  VHDX_GUIDS.virtualDiskSize,
  VHDX_GUIDS.virtualDiskId,
  VHDX_GUIDS.logicalSectorSize,
  VHDX_GUIDS.physicalSectorSize,
  VHDX_GUIDS.parentLocator,
])

/** Payload BAT entry states (low 3 bits of an entry). */
export const PayloadBlockState = {
  NOT_PRESENT: 0,
  UNDEFINED: 1,
  ZERO: 2,
  UNMAPPED: 3,
  /** PAYLOAD_BLOCK_UNMAPPED of the 0.95 draft; read like UNMAPPED, as qemu does. */
  UNMAPPED_V095: 5,
  FULLY_PRESENT: 6,
  PARTIALLY_PRESENT: 7,
} as const
const SB_BLOCK_PRESENT = 6

export type VhdxErrorCode = 'VHDX_CORRUPT' | 'VHDX_UNSUPPORTED'

export class VhdxError extends Error {
  readonly code: string
  readonly path: string | undefined
  constructor(code: string, message: string, options?: {path?: string; cause?: unknown}) {
    super(message, options?.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'VhdxError'
    this.code = code
    this.path = options?.path
  }
}

/** The file breaks the format: bad signature or checksum, truncated, offsets outside the file, absurd sizes. */
export class VhdxCorruptError extends VhdxError {
  constructor(path: string, message: string) {
    super('VHDX_CORRUPT', `${path}: corrupt VHDX: ${message}`, {path})
    this.name = 'VhdxCorruptError'
  }
}

/** The file may be valid but uses something this reader does not handle (log replay, unknown required items). */
export class VhdxUnsupportedError extends VhdxError {
  /** Machine-readable reason, e.g. `log-replay-required`. */
  readonly reason: string
  constructor(path: string, reason: string, message: string) {
    super('VHDX_UNSUPPORTED', `${path}: unsupported VHDX: ${message}`, {path})
    this.name = 'VhdxUnsupportedError'
    this.reason = reason
  }
}

/** Guest bytes whose data is stored in this file at `fileOffset`. */
export interface VhdxDataRun {
  guestOffset: number
  length: number
  fileOffset: number
  zero?: false
}

/** Guest bytes that this (differencing) file defines as zeros, hiding the parent's data. */
export interface VhdxZeroRun {
  guestOffset: number
  length: number
  zero: true
}

export type VhdxRun = VhdxDataRun | VhdxZeroRun

export interface VhdxBlockCounts {
  notPresent: number
  undefined: number
  zero: number
  unmapped: number
  fullyPresent: number
  partiallyPresent: number
}

export interface VhdxLayout {
  path: string
  fileSize: number
  virtualSize: number
  blockSize: number
  logicalSectorSize: number
  physicalSectorSize: number
  leaveBlockAllocated: boolean
  hasParent: boolean
  /** Payload blocks per sector bitmap block: (2^23 * logicalSectorSize) / blockSize. */
  chunkRatio: number
  /** DataWriteGuid of the header in use; a child's `parent_linkage` names its parent's DataWriteGuid. */
  dataWriteGuid: string
  virtualDiskId?: string
  /** Parent locator key/value entries (differencing disks only), e.g. `relative_path`, `parent_linkage`. */
  parentLocator?: Record<string, string>
  parentLocatorType?: string
  /** Where the BAT and metadata regions are (byte offsets and lengths in the file). */
  regions: {bat: Region; metadata: Region}
  /** How many payload blocks are in each state (states 3 and 5 are both counted as unmapped). */
  blockCounts: VhdxBlockCounts
  /**
   * Guest ranges whose content this file defines, in ascending guest order, adjacent ranges merged. Each
   * iteration opens the file again and streams the BAT; nothing is kept in memory between iterations.
   * Non-differencing disks: FULLY_PRESENT blocks only. Differencing disks: present sectors, plus zero runs for
   * ZERO blocks and for UNDEFINED/UNMAPPED blocks (their content is undefined; zeros are a valid reading and do
   * not resurrect the parent's stale data).
   */
  runs: AsyncIterable<VhdxRun>
}

/** Formats 16 bytes of an on-disk GUID (mixed endian, as Windows stores it) as `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`. */
export function formatGuid(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError('a GUID is 16 bytes')
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, 16)
  const hex = (buf: Buffer) => buf.toString('hex')
  const d1 = b.readUInt32LE(0).toString(16).padStart(8, '0')
  const d2 = b.readUInt16LE(4).toString(16).padStart(4, '0')
  const d3 = b.readUInt16LE(6).toString(16).padStart(4, '0')
  return `${d1}-${d2}-${d3}-${hex(b.subarray(8, 10))}-${hex(b.subarray(10, 16))}`.toUpperCase()
}

/** Inverse of {@link formatGuid}; accepts optional braces. */
export function parseGuid(text: string): Buffer {
  const m = /^\{?([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}?$/i.exec(text)
  if (!m) throw new RangeError(`not a GUID: ${text}`)
  const out = Buffer.alloc(16)
  out.writeUInt32LE(Number.parseInt(m[1]!, 16), 0)
  out.writeUInt16LE(Number.parseInt(m[2]!, 16), 4)
  out.writeUInt16LE(Number.parseInt(m[3]!, 16), 6)
  Buffer.from(m[4]! + m[5]!, 'hex').copy(out, 8)
  return out
}

const isZeroGuid = (bytes: Uint8Array) => bytes.every((x) => x === 0)

/** Reads exactly `length` bytes at `position`; a short file is corruption. */
async function readPart(fh: FileHandle, path: string, position: number, length: number, what: string): Promise<Buffer> {
  return readExact(fh, position, length, () => new VhdxCorruptError(path, `${what} at offset ${position} (${length} bytes) is beyond the end of the file`))
}

/** Converts a u64 read from the file, refusing values beyond `max` (which keeps them exact as numbers). */
function u64(buf: Buffer, offset: number, max: number, path: string, what: string): number {
  const v = buf.readBigUInt64LE(offset)
  if (v > BigInt(max)) throw new VhdxCorruptError(path, `${what} ${v} is out of range (max ${max})`)
  return Number(v)
}

function checksumOk(block: Buffer): boolean {
  const stored = block.readUInt32LE(4)
  const copy = Buffer.from(block)
  copy.writeUInt32LE(0, 4)
  return crc32c(copy) === stored
}

const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0

interface Header {
  sequenceNumber: bigint
  dataWriteGuid: string
  logGuid: Buffer
  version: number
}

async function readHeaders(fh: FileHandle, path: string): Promise<Header> {
  const candidates: Header[] = []
  const problems: string[] = []
  for (const [i, offset] of HEADER_OFFSETS.entries()) {
    const buf = await readPart(fh, path, offset, HEADER_SIZE, `header ${i + 1}`)
    if (buf.toString('latin1', 0, 4) !== 'head') {
      problems.push(`header ${i + 1} has no "head" signature`)
      continue
    }
    if (!checksumOk(buf)) {
      problems.push(`header ${i + 1} has a bad CRC-32C checksum`)
      continue
    }
    candidates.push({
      sequenceNumber: buf.readBigUInt64LE(8),
      dataWriteGuid: formatGuid(buf.subarray(32, 48)),
      logGuid: Buffer.from(buf.subarray(48, 64)),
      version: buf.readUInt16LE(66),
    })
  }
  if (candidates.length === 0) throw new VhdxCorruptError(path, `no valid header (${problems.join('; ')})`)
  // The valid header with the highest SequenceNumber is the current one.
  const current = candidates.reduce((a, b) => (b.sequenceNumber > a.sequenceNumber ? b : a))
  if (current.version !== 1) {
    throw new VhdxUnsupportedError(path, 'header-version', `header version ${current.version} (only version 1 is known)`)
  }
  if (!isZeroGuid(current.logGuid)) {
    throw new VhdxUnsupportedError(
      path,
      'log-replay-required',
      `the log is not empty (LogGuid ${formatGuid(current.logGuid)}): the file was not closed cleanly and its log ` +
        'must be replayed before it can be read (open and shut it down once in Hyper-V, or for a non-differencing ' +
        'disk run "qemu-img check -r all -f vhdx" on a copy)',
    )
  }
  return current
}

export interface Region {
  offset: number
  length: number
}

async function readRegionTable(fh: FileHandle, path: string, fileSize: number): Promise<{bat: Region; metadata: Region}> {
  const problems: string[] = []
  let table: Buffer | undefined
  for (const [i, offset] of REGION_TABLE_OFFSETS.entries()) {
    const buf = await readPart(fh, path, offset, REGION_TABLE_SIZE, `region table ${i + 1}`)
    if (buf.toString('latin1', 0, 4) !== 'regi') problems.push(`region table ${i + 1} has no "regi" signature`)
    else if (!checksumOk(buf)) problems.push(`region table ${i + 1} has a bad CRC-32C checksum`)
    else {
      table = buf
      break
    }
  }
  if (!table) throw new VhdxCorruptError(path, `no valid region table (${problems.join('; ')})`)

  const count = table.readUInt32LE(8)
  if (count > REGION_TABLE_MAX_ENTRIES)
    throw new VhdxCorruptError(path, `region table has ${count} entries (max ${REGION_TABLE_MAX_ENTRIES})`)
  let bat: Region | undefined
  let metadata: Region | undefined
  for (let i = 0; i < count; i++) {
    const e = 16 + i * 32
    const guid = formatGuid(table.subarray(e, e + 16))
    const offset = u64(table, e + 16, fileSize, path, `region ${guid} offset`)
    const length = table.readUInt32LE(e + 24)
    const required = (table.readUInt32LE(e + 28) & 1) === 1
    const region = {offset, length}
    if (guid === VHDX_GUIDS.batRegion || guid === VHDX_GUIDS.metadataRegion) {
      const name = guid === VHDX_GUIDS.batRegion ? 'BAT' : 'metadata'
      if ((guid === VHDX_GUIDS.batRegion ? bat : metadata) !== undefined) throw new VhdxCorruptError(path, `duplicate ${name} region`)
      if (offset < MiB || offset % MiB !== 0 || length === 0 || length % MiB !== 0) {
        throw new VhdxCorruptError(path, `${name} region at ${offset} (+${length}) is not 1 MiB aligned`)
      }
      if (offset + length > fileSize) {
        throw new VhdxCorruptError(path, `${name} region at ${offset} (+${length}) extends beyond the end of the file (${fileSize} bytes)`)
      }
      if (guid === VHDX_GUIDS.batRegion) bat = region
      else metadata = region
    } else if (required) {
      throw new VhdxUnsupportedError(path, 'unknown-required-region', `unknown required region ${guid}`)
    }
  }
  if (!bat) throw new VhdxCorruptError(path, 'region table has no BAT region')
  if (!metadata) throw new VhdxCorruptError(path, 'region table has no metadata region')
  if (bat.offset < metadata.offset + metadata.length && metadata.offset < bat.offset + bat.length) {
    throw new VhdxCorruptError(path, 'BAT and metadata regions overlap')
  }
  return {bat, metadata}
}

interface Metadata {
  blockSize: number
  leaveBlockAllocated: boolean
  hasParent: boolean
  virtualSize: number
  logicalSectorSize: number
  physicalSectorSize: number
  virtualDiskId?: string
  parentLocator?: Record<string, string>
  parentLocatorType?: string
}

async function readMetadata(fh: FileHandle, path: string, region: Region): Promise<Metadata> {
  if (region.length < METADATA_TABLE_SIZE) throw new VhdxCorruptError(path, 'metadata region is smaller than its table')
  const table = await readPart(fh, path, region.offset, METADATA_TABLE_SIZE, 'metadata table')
  if (table.toString('latin1', 0, 8) !== 'metadata') throw new VhdxCorruptError(path, 'metadata table has no "metadata" signature')
  const count = table.readUInt16LE(10)
  if (count > METADATA_TABLE_MAX_ENTRIES)
    throw new VhdxCorruptError(path, `metadata table has ${count} entries (max ${METADATA_TABLE_MAX_ENTRIES})`)

  const items = new Map<string, Buffer>()
  for (let i = 0; i < count; i++) {
    const e = 32 + i * 32
    const guid = formatGuid(table.subarray(e, e + 16))
    const offset = table.readUInt32LE(e + 16)
    const length = table.readUInt32LE(e + 20)
    const flags = table.readUInt32LE(e + 24)
    const isUser = (flags & 1) !== 0
    const isRequired = (flags & 4) !== 0
    const known = !isUser && KNOWN_METADATA_ITEMS.has(guid)
    if (!known) {
      if (isRequired) throw new VhdxUnsupportedError(path, 'unknown-required-metadata', `unknown required metadata item ${guid}`)
      continue
    }
    if (items.has(guid)) throw new VhdxCorruptError(path, `duplicate metadata item ${guid}`)
    if (length > METADATA_ITEM_MAX_LENGTH) throw new VhdxCorruptError(path, `metadata item ${guid} is ${length} bytes (max 1 MiB)`)
    if (length > 0 && (offset < METADATA_TABLE_SIZE || offset + length > region.length)) {
      throw new VhdxCorruptError(path, `metadata item ${guid} at ${offset} (+${length}) lies outside the metadata region`)
    }
    items.set(guid, await readPart(fh, path, region.offset + offset, length, `metadata item ${guid}`))
  }

  const item = (guid: string, name: string, minLength: number): Buffer => {
    const buf = items.get(guid)
    if (!buf) throw new VhdxCorruptError(path, `missing ${name} metadata item`)
    if (buf.length < minLength) throw new VhdxCorruptError(path, `${name} metadata item is ${buf.length} bytes (need ${minLength})`)
    return buf
  }

  const fileParameters = item(VHDX_GUIDS.fileParameters, 'File Parameters', 8)
  const blockSize = fileParameters.readUInt32LE(0)
  const fpFlags = fileParameters.readUInt32LE(4)
  if (!isPowerOfTwo(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw new VhdxCorruptError(path, `block size ${blockSize} is not a power of two between 1 MiB and 256 MiB`)
  }
  const logicalSectorSize = item(VHDX_GUIDS.logicalSectorSize, 'Logical Sector Size', 4).readUInt32LE(0)
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096) {
    throw new VhdxCorruptError(path, `logical sector size ${logicalSectorSize} (must be 512 or 4096)`)
  }
  const physicalSectorSize = item(VHDX_GUIDS.physicalSectorSize, 'Physical Sector Size', 4).readUInt32LE(0)
  if (physicalSectorSize !== 512 && physicalSectorSize !== 4096) {
    throw new VhdxCorruptError(path, `physical sector size ${physicalSectorSize} (must be 512 or 4096)`)
  }
  const sizeItem = item(VHDX_GUIDS.virtualDiskSize, 'Virtual Disk Size', 8)
  const rawSize = sizeItem.readBigUInt64LE(0)
  if (rawSize === 0n || rawSize > BigInt(VHDX_MAX_VIRTUAL_SIZE)) {
    throw new VhdxCorruptError(path, `virtual disk size ${rawSize} is out of range (1 byte to 64 TiB)`)
  }
  const virtualSize = Number(rawSize)
  if (virtualSize % logicalSectorSize !== 0) {
    throw new VhdxCorruptError(path, `virtual disk size ${virtualSize} is not a multiple of the logical sector size ${logicalSectorSize}`)
  }

  const result: Metadata = {
    blockSize,
    leaveBlockAllocated: (fpFlags & 1) !== 0,
    hasParent: (fpFlags & 2) !== 0,
    virtualSize,
    logicalSectorSize,
    physicalSectorSize,
  }
  const id = items.get(VHDX_GUIDS.virtualDiskId)
  if (id && id.length >= 16) result.virtualDiskId = formatGuid(id.subarray(0, 16))

  if (result.hasParent) {
    const locator = item(VHDX_GUIDS.parentLocator, 'Parent Locator', 20)
    result.parentLocatorType = formatGuid(locator.subarray(0, 16))
    result.parentLocator = parseParentLocator(locator, path)
  }
  return result
}

function parseParentLocator(buf: Buffer, path: string): Record<string, string> {
  const count = buf.readUInt16LE(18)
  if (20 + count * 12 > buf.length)
    throw new VhdxCorruptError(path, `parent locator claims ${count} entries but is only ${buf.length} bytes`)
  const entries = new Map<string, string>()
  const text = (offset: number, length: number, what: string): string => {
    if (length % 2 !== 0 || offset + length > buf.length || offset < 20 + count * 12) {
      throw new VhdxCorruptError(path, `parent locator ${what} at ${offset} (+${length}) is malformed or out of bounds`)
    }
    return buf.toString('utf16le', offset, offset + length)
  }
  for (let i = 0; i < count; i++) {
    const e = 20 + i * 12
    const keyOffset = buf.readUInt32LE(e)
    const valueOffset = buf.readUInt32LE(e + 4)
    const keyLength = buf.readUInt16LE(e + 8)
    const valueLength = buf.readUInt16LE(e + 10)
    if (keyLength === 0) throw new VhdxCorruptError(path, `parent locator entry ${i} has an empty key`)
    const key = text(keyOffset, keyLength, `key ${i}`)
    if (entries.has(key)) throw new VhdxCorruptError(path, `parent locator has duplicate key "${key}"`)
    entries.set(key, text(valueOffset, valueLength, `value of "${key}"`))
  }
  // fromEntries defines own properties, so a key such as "__proto__" cannot touch the prototype.
  return Object.fromEntries(entries)
}

interface Geometry {
  path: string
  fileSize: number
  virtualSize: number
  blockSize: number
  logicalSectorSize: number
  hasParent: boolean
  chunkRatio: number
  dataBlocks: number
  bat: Region
}

interface BlockInfo {
  index: number
  state: number
  /** File offset of the payload block (present states only). */
  fileOffset: number
  /** File offset of the chunk's sector bitmap block (PARTIALLY_PRESENT only). */
  bitmapOffset: number
}

function batEntryCount(g: Omit<Geometry, 'bat' | 'path' | 'fileSize'>): number {
  if (g.hasParent) {
    const sectorBitmapBlocks = Math.ceil(g.dataBlocks / g.chunkRatio)
    return sectorBitmapBlocks * (g.chunkRatio + 1)
  }
  return g.dataBlocks + Math.floor((g.dataBlocks - 1) / g.chunkRatio)
}

/**
 * Walks the payload entries of the BAT in guest order, validating each one and counting states into `counts`.
 * Yields, per window of BAT entries, the blocks that are not NOT_PRESENT. Memory is bounded by one window; the
 * loop runs exactly `dataBlocks` times.
 */
async function* walkBat(fh: FileHandle, g: Geometry, counts?: VhdxBlockCounts): AsyncGenerator<BlockInfo[]> {
  const {path, fileSize, blockSize} = g
  const totalEntries = g.bat.length / 8

  let cachedChunk = -1
  let cachedBitmapOffset = 0
  const sectorBitmap = async (chunk: number): Promise<number> => {
    if (chunk === cachedChunk) return cachedBitmapOffset
    const index = chunk * (g.chunkRatio + 1) + g.chunkRatio
    const buf = await readPart(fh, path, g.bat.offset + index * 8, 8, 'BAT sector bitmap entry')
    const low = buf.readUInt32LE(0)
    const state = low & 7
    const offsetMB = (low >>> 20) + buf.readUInt32LE(4) * 4096
    if (state !== SB_BLOCK_PRESENT) {
      throw new VhdxCorruptError(
        path,
        `chunk ${chunk} has partially present blocks but its sector bitmap block is not present (state ${state})`,
      )
    }
    const offset = offsetMB * MiB
    if (offsetMB === 0 || offset + SECTOR_BITMAP_BLOCK_SIZE > fileSize) {
      throw new VhdxCorruptError(path, `sector bitmap block of chunk ${chunk} at ${offset} lies outside the file (${fileSize} bytes)`)
    }
    cachedChunk = chunk
    cachedBitmapOffset = offset
    return offset
  }

  let block = 0
  while (block < g.dataBlocks) {
    // One window: consecutive BAT entries starting at this block's entry.
    const firstIndex = block + Math.floor(block / g.chunkRatio)
    const entries = Math.min(BAT_WINDOW_ENTRIES, totalEntries - firstIndex)
    const window = await readPart(fh, path, g.bat.offset + firstIndex * 8, entries * 8, 'BAT')
    const out: BlockInfo[] = []
    for (; block < g.dataBlocks; block++) {
      const chunk = Math.floor(block / g.chunkRatio)
      const at = (block + chunk - firstIndex) * 8
      if (at + 8 > window.length) break
      const low = window.readUInt32LE(at)
      const state = low & 7
      const offsetMB = (low >>> 20) + window.readUInt32LE(at + 4) * 4096
      switch (state) {
        case PayloadBlockState.NOT_PRESENT:
          if (counts) counts.notPresent++
          continue
        case PayloadBlockState.UNDEFINED:
          if (counts) counts.undefined++
          break
        case PayloadBlockState.ZERO:
          if (counts) counts.zero++
          break
        case PayloadBlockState.UNMAPPED:
        case PayloadBlockState.UNMAPPED_V095:
          if (counts) counts.unmapped++
          break
        case PayloadBlockState.FULLY_PRESENT:
          if (counts) counts.fullyPresent++
          break
        case PayloadBlockState.PARTIALLY_PRESENT:
          if (!g.hasParent) throw new VhdxCorruptError(path, `block ${block} is PARTIALLY_PRESENT in a disk that has no parent`)
          if (counts) counts.partiallyPresent++
          break
        default:
          throw new VhdxCorruptError(path, `BAT entry of block ${block} has the reserved state ${state}`)
      }
      const info: BlockInfo = {index: block, state, fileOffset: 0, bitmapOffset: 0}
      if (state === PayloadBlockState.FULLY_PRESENT || state === PayloadBlockState.PARTIALLY_PRESENT) {
        const dataLength = Math.min(blockSize, g.virtualSize - block * blockSize)
        const offset = offsetMB * MiB
        if (offsetMB === 0 || offset + dataLength > fileSize) {
          throw new VhdxCorruptError(
            path,
            `BAT entry of block ${block} points to ${offset} (+${dataLength}), outside the file (${fileSize} bytes)`,
          )
        }
        info.fileOffset = offset
        if (state === PayloadBlockState.PARTIALLY_PRESENT) info.bitmapOffset = await sectorBitmap(chunk)
      }
      out.push(info)
    }
    yield out
  }
}

/** Ranges of present sectors in a sector bitmap slice (bit 0 of byte 0 = first sector), as [first, end) pairs. */
function presentSectorRanges(bitmap: Buffer, sectors: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = []
  const isSet = (s: number) => ((bitmap[s >>> 3]! >>> (s & 7)) & 1) === 1
  let s = 0
  while (s < sectors) {
    if ((s & 7) === 0 && bitmap[s >>> 3] === 0) {
      s += 8 // a whole byte of sectors that come from the parent
      continue
    }
    if (!isSet(s)) {
      s++
      continue
    }
    const first = s
    while (s < sectors && isSet(s)) s++
    ranges.push([first, s])
  }
  return ranges
}

/** The runs one payload block contributes, in guest order. */
async function blockRuns(fh: FileHandle, g: Geometry, b: BlockInfo): Promise<VhdxRun[]> {
  const guestOffset = b.index * g.blockSize
  const length = Math.min(g.blockSize, g.virtualSize - guestOffset)
  switch (b.state) {
    case PayloadBlockState.FULLY_PRESENT:
      return [{guestOffset, length, fileOffset: b.fileOffset}]
    case PayloadBlockState.ZERO:
    case PayloadBlockState.UNDEFINED:
    case PayloadBlockState.UNMAPPED:
    case PayloadBlockState.UNMAPPED_V095:
      // Without a parent these read as zeros anyway; with one they must hide the parent's data.
      return g.hasParent ? [{guestOffset, length, zero: true}] : []
    case PayloadBlockState.PARTIALLY_PRESENT: {
      const sectorSize = g.logicalSectorSize
      const bitmapBytes = g.blockSize / sectorSize / 8
      const blockInChunk = b.index % g.chunkRatio
      const bitmap = await readPart(fh, g.path, b.bitmapOffset + blockInChunk * bitmapBytes, bitmapBytes, 'sector bitmap')
      return presentSectorRanges(bitmap, length / sectorSize).map(([first, end]) => ({
        guestOffset: guestOffset + first * sectorSize,
        length: (end - first) * sectorSize,
        fileOffset: b.fileOffset + first * sectorSize,
      }))
    }
    default:
      return [] // NOT_PRESENT: the parent's data (differencing) or zeros.
  }
}

/** True when `next` continues `run` both in the guest and (for data) in the file. */
function extendsRun(run: VhdxRun, next: VhdxRun): boolean {
  if (run.guestOffset + run.length !== next.guestOffset) return false
  if (run.zero || next.zero) return run.zero === true && next.zero === true
  return run.fileOffset + run.length === next.fileOffset
}

/** Turns the BAT walk into merged guest runs, reading sector bitmaps of partially present blocks. */
async function* generateRuns(g: Geometry): AsyncGenerator<VhdxRun> {
  const fh = await open(g.path, 'r')
  try {
    let pending: VhdxRun | undefined
    for await (const batch of walkBat(fh, g)) {
      for (const block of batch) {
        for (const run of await blockRuns(fh, g, block)) {
          if (pending && extendsRun(pending, run)) {
            pending.length += run.length
          } else {
            if (pending) yield pending
            pending = run
          }
        }
      }
    }
    if (pending) yield pending
  } finally {
    await fh.close()
  }
}

/**
 * Parses a VHDX file's structures and validates its BAT. Throws {@link VhdxCorruptError} (code `VHDX_CORRUPT`) or
 * {@link VhdxUnsupportedError} (code `VHDX_UNSUPPORTED`, e.g. when the log needs replaying).
 */
export async function readVhdxLayout(path: string): Promise<VhdxLayout> {
  const fh = await open(path, 'r')
  try {
    const {size: fileSize} = await fh.stat()
    if (fileSize < REGION_TABLE_OFFSETS[1] + REGION_TABLE_SIZE) {
      throw new VhdxCorruptError(path, `file is only ${fileSize} bytes, too small to hold the VHDX headers and region tables`)
    }
    const ident = await readPart(fh, path, 0, 8, 'file type identifier')
    if (ident.toString('latin1') !== 'vhdxfile')
      throw new VhdxCorruptError(path, 'missing "vhdxfile" file type identifier (not a VHDX file)')

    const header = await readHeaders(fh, path)
    const regions = await readRegionTable(fh, path, fileSize)
    const meta = await readMetadata(fh, path, regions.metadata)

    const chunkRatio = (2 ** 23 * meta.logicalSectorSize) / meta.blockSize
    const dataBlocks = Math.ceil(meta.virtualSize / meta.blockSize)
    const geometry: Geometry = {
      path,
      fileSize,
      virtualSize: meta.virtualSize,
      blockSize: meta.blockSize,
      logicalSectorSize: meta.logicalSectorSize,
      hasParent: meta.hasParent,
      chunkRatio,
      dataBlocks,
      bat: regions.bat,
    }
    const needed = batEntryCount(geometry)
    if (needed * 8 > regions.bat.length) {
      throw new VhdxCorruptError(path, `BAT region holds ${regions.bat.length / 8} entries but the disk needs ${needed}`)
    }

    // Validate every BAT entry now, so that a hostile file fails here rather than halfway through a copy.
    const blockCounts: VhdxBlockCounts = {notPresent: 0, undefined: 0, zero: 0, unmapped: 0, fullyPresent: 0, partiallyPresent: 0}
    for await (const batch of walkBat(fh, geometry, blockCounts)) void batch

    const layout: VhdxLayout = {
      path,
      fileSize,
      virtualSize: meta.virtualSize,
      blockSize: meta.blockSize,
      logicalSectorSize: meta.logicalSectorSize,
      physicalSectorSize: meta.physicalSectorSize,
      leaveBlockAllocated: meta.leaveBlockAllocated,
      hasParent: meta.hasParent,
      chunkRatio,
      dataWriteGuid: header.dataWriteGuid,
      regions,
      blockCounts,
      runs: {[Symbol.asyncIterator]: () => generateRuns(geometry)},
    }
    if (meta.virtualDiskId !== undefined) layout.virtualDiskId = meta.virtualDiskId
    if (meta.parentLocator !== undefined) layout.parentLocator = meta.parentLocator
    if (meta.parentLocatorType !== undefined) layout.parentLocatorType = meta.parentLocatorType
    return layout
  } finally {
    await fh.close()
  }
}
