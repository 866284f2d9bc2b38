import {type FileHandle, open} from 'node:fs/promises'
import {basename} from 'node:path'

import {H2KError} from '../errors/h2k-error.js'
import {readExact} from '../fs/read-head.js'
import {checkEmbeddedExtents} from './vmdk-embedded-extents.js'
import {type Header, parseHeader, refuseDisagreement} from './vmdk-sparse-header.js'

/**
 * Validation of hosted sparse VMDK extents ("KDMV": monolithicSparse, streamOptimized, the -sNNN
 * extents of twoGbMaxExtentSparse). qemu-img does not catch a truncated sparse or streamOptimized VMDK:
 * `info` and `convert` succeed and read the missing grains as zeros. So before qemu sees one, we walk
 * its grain directory and tables and require every allocated grain to lie inside the file.
 */

export interface SparseVmdkFacts {
  /** streamOptimized: compressed grains; monolithicSparse: an embedded descriptor; sparse: a bare extent. */
  subformat: 'monolithicSparse' | 'streamOptimized' | 'sparse'
  capacityBytes: number
  /** The embedded descriptor text, when the header points at one. */
  embeddedDescriptor?: string
  version: number
  grainSizeBytes: number
  /** Grain table entries that point at data. */
  allocatedGrains: number
  /** Grain table entries that mark a grain as zeroed (version 2+ zeroed-grain flag). */
  zeroedGrains: number
}

export interface FileWindow {
  /** Byte offset of the VMDK inside the file (an OVA member); every VMDK offset is relative to it. */
  offset: number
  /** Byte length of the VMDK. */
  size: number
}

const SECTOR = 512
const MAGIC = 'KDMV'
const GD_AT_END = 0xffffffffffffffffn
const FLAG_NL_DETECT = 1 << 0
const FLAG_RGD = 1 << 1
const FLAG_ZERO_GRAIN = 1 << 2
const FLAG_COMPRESSED = 1 << 16
const FLAG_MARKERS = 1 << 17
const COMPRESSION_NONE = 0
const COMPRESSION_DEFLATE = 1
const MARKER_EOS = 0
const MARKER_FOOTER = 3
/** Compressed grains start with {lba: u64, size: u32}. */
const GRAIN_MARKER_HEADER = 12

/** 64 TiB: above what VMware supports for any VMDK; a bigger capacity is a damaged header. */
const MAX_CAPACITY_SECTORS = 2n ** 37n
/** qemu refuses grains over 1 GiB; VMware writes 64 KiB. 32 MiB is generous and still sane. */
const MAX_GRAIN_SECTORS = 65_536n
/** qemu refuses grain tables of more than 512 entries; VMware always writes 512. */
const MAX_GTES_PER_GT = 512
/** 64 TiB in 64 KiB grains needs 2M grain tables; refuse directories beyond twice that. */
const MAX_GRAIN_TABLES = 4 * 1024 * 1024
/** Embedded descriptors are 10 KiB in practice; qemu reads at most 1 MiB. */
const MAX_DESCRIPTOR_SECTORS = 2048n
/** Grain tables are read in batches of at most this many bytes. */
const READ_BATCH = 4 * 1024 * 1024

/** Reads inside the window only; running past its end means the file is truncated. */
class WindowReader {
  constructor(
    private readonly handle: FileHandle,
    private readonly window: FileWindow,
    private readonly fail: (why: string) => H2KError,
  ) {}

  get size(): number {
    return this.window.size
  }

  /** Exactly `length` bytes at `position` (relative to the window), or a corruption error saying `what`. */
  async read(position: number, length: number, what: string): Promise<Buffer> {
    if (position < 0 || position + length > this.window.size) {
      throw this.fail(`${what} (bytes ${position}..${position + length}) lies beyond the end of the file (${this.window.size} bytes): the file is truncated or its header is damaged`)
    }
    return readExact(this.handle, this.window.offset + position, length, () => this.fail(`${what} could not be read: the file ends early`))
  }
}

/** A sector offset from the header as a byte offset, refusing values no real file can have. */
function bytesAt(sectors: bigint, what: string, fail: (why: string) => H2KError): number {
  const bytes = sectors * BigInt(SECTOR)
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`${what} (sector ${sectors}) is out of range`)
  return Number(bytes)
}

/**
 * Validate a hosted sparse VMDK (a file starting with "KDMV") without trusting anything in it, and
 * return what the loader needs. Reads only the header, descriptor, grain directory and grain tables,
 * never the data, so it is cheap even for a disk of hundreds of GB. With `window` the VMDK is a byte
 * range of `file` (an OVA member read in place).
 *
 * Throws H2K_INPUT_CORRUPT (truncated or inconsistent) or H2K_INPUT_UNSUPPORTED (a variant qemu
 * cannot read), naming the file and what is wrong.
 */
export async function validateSparseVmdk(file: string, window?: FileWindow): Promise<SparseVmdkFacts> {
  const name = window ? `${basename(file)} (VMDK at byte ${window.offset}, ${window.size} bytes)` : basename(file)
  const details = {file, ...(window ? {window} : {})}
  const corrupt = (why: string): H2KError => new H2KError('H2K_INPUT_CORRUPT', `${name}: ${why}.`, {details})
  const unsupported = (why: string): H2KError => new H2KError('H2K_INPUT_UNSUPPORTED', `${name}: ${why}.`, {details})

  const handle = await open(file, 'r')
  try {
    const fileSize = (await handle.stat()).size
    const area = window ?? {offset: 0, size: fileSize}
    if (!Number.isSafeInteger(area.offset) || !Number.isSafeInteger(area.size) || area.offset < 0 || area.size < 0) {
      throw corrupt('the VMDK window is not a valid byte range')
    }
    if (area.offset + area.size > fileSize) throw corrupt(`the VMDK should span ${area.size} bytes but the file ends after ${fileSize - area.offset}`)
    const reader = new WindowReader(handle, area, corrupt)
    return await validate(reader, {corrupt, file, name, unsupported})
  } finally {
    await handle.close()
  }
}

interface Context {
  /** The host file (qemu resolves extent names against its folder) and its name in messages. */
  file: string
  name: string
  corrupt: (why: string) => H2KError
  unsupported: (why: string) => H2KError
}

async function validate(reader: WindowReader, context: Context): Promise<SparseVmdkFacts> {
  const {corrupt, unsupported} = context
  if (reader.size < SECTOR) throw corrupt(`the file is ${reader.size} bytes, smaller than one sparse header`)
  const first = await reader.read(0, SECTOR, 'the sparse header')
  if (first.subarray(0, 4).toString('latin1') !== MAGIC) throw corrupt('the file does not start with the sparse VMDK magic "KDMV"')
  const firstHeader = parseHeader(first)

  // qemu decides on the FIRST header whether the file is a descriptor wrapped in a sparse header
  // (capacity 0 and a descriptor offset): then it follows that descriptor's extents, whatever a footer
  // says. So that descriptor's extent names get the checks of a text descriptor's, and capacity 0 is
  // refused before any footer is read.
  const firstDescriptor = await readEmbeddedDescriptor(reader, firstHeader, corrupt)
  if (firstDescriptor !== undefined) await checkEmbeddedExtents(firstDescriptor, context.file, context.name)
  if (firstHeader.capacity === 0n) {
    throw unsupported('the sparse header has capacity 0 (a descriptor wrapped in a sparse header, whose extents qemu would open)')
  }

  // A stream-optimized file written in one pass only knows where its grain directory is at the end:
  // the header says "at end" and qemu takes every other field from the header copy in the footer. The
  // two must agree, or what we validate is not what qemu reads.
  let header = firstHeader
  if (firstHeader.gdOffset === GD_AT_END) {
    header = await readFooter(reader, corrupt)
    refuseDisagreement(firstHeader, header, corrupt)
  }

  if (header.version < 1 || header.version > 3) {
    throw header.version === 0 ? corrupt('the header version is 0') : unsupported(`sparse VMDK version ${header.version} (hyper2kvm and qemu read versions 1 to 3)`)
  }
  if ((header.flags & FLAG_NL_DETECT) !== 0 && header.newlineBytes.toString('latin1') !== '\n \r\n') {
    throw corrupt('the newline-detection bytes of the header are altered: the file was transferred in text (ASCII) mode')
  }
  if (header.compressAlgorithm !== COMPRESSION_NONE && header.compressAlgorithm !== COMPRESSION_DEFLATE) {
    throw unsupported(`grain compression algorithm ${header.compressAlgorithm} (only deflate is defined)`)
  }
  const compressed = header.compressAlgorithm === COMPRESSION_DEFLATE
  const streamOptimized = compressed || (header.flags & (FLAG_COMPRESSED | FLAG_MARKERS)) !== 0

  if (header.capacity > MAX_CAPACITY_SECTORS) throw corrupt(`the capacity of ${header.capacity} sectors is more than 64 TiB`)
  const grainSize = header.grainSize
  if (grainSize === 0n || (grainSize & (grainSize - 1n)) !== 0n) throw corrupt(`the grain size of ${grainSize} sectors is not a power of two`)
  if (grainSize > MAX_GRAIN_SECTORS) throw corrupt(`the grain size of ${grainSize} sectors is implausibly large`)
  if (header.numGTEsPerGT === 0) throw corrupt('the header says grain tables have 0 entries')
  if (header.numGTEsPerGT > MAX_GTES_PER_GT) throw unsupported(`grain tables of ${header.numGTEsPerGT} entries (at most ${MAX_GTES_PER_GT} are supported)`)

  const sectorsPerGT = grainSize * BigInt(header.numGTEsPerGT)
  const tableCountBig = (header.capacity + sectorsPerGT - 1n) / sectorsPerGT
  if (tableCountBig > BigInt(MAX_GRAIN_TABLES)) throw unsupported(`the grain directory has ${tableCountBig} tables, more than the ${MAX_GRAIN_TABLES} hyper2kvm accepts`)
  const tableCount = Number(tableCountBig)
  const capacityBytes = Number(header.capacity) * SECTOR
  const grainBytes = Number(grainSize) * SECTOR

  if (bytesAt(header.overHead, 'the metadata size (overHead)', corrupt) > reader.size) {
    throw corrupt(`the header reserves ${header.overHead} sectors of metadata but the file has only ${Math.floor(reader.size / SECTOR)}: the file is truncated`)
  }

  // A footer agrees with the first header on the descriptor's offset and size: it is the same text.
  const embeddedDescriptor = firstDescriptor

  const gdBytes = tableCount * 4
  const gdOffset = bytesAt(header.gdOffset, 'the grain directory offset', corrupt)
  if (gdOffset === 0) throw corrupt('the header has no grain directory')
  const directory = await reader.read(gdOffset, gdBytes, 'the grain directory')
  if ((header.flags & FLAG_RGD) !== 0 && header.rgdOffset !== 0n) {
    const rgdOffset = bytesAt(header.rgdOffset, 'the redundant grain directory offset', corrupt)
    if (rgdOffset + gdBytes > reader.size) throw corrupt(`the redundant grain directory (bytes ${rgdOffset}..${rgdOffset + gdBytes}) lies beyond the end of the file: the file is truncated`)
  }

  const counts = await checkGrainTables(reader, {
    capacityBytes,
    compressed,
    corrupt,
    directory,
    grainBytes,
    gtesPerGT: header.numGTEsPerGT,
    zeroGrainFlag: (header.flags & FLAG_ZERO_GRAIN) !== 0,
  })

  const facts: SparseVmdkFacts = {
    allocatedGrains: counts.allocated,
    capacityBytes,
    grainSizeBytes: grainBytes,
    subformat: streamOptimized ? 'streamOptimized' : embeddedDescriptor === undefined ? 'sparse' : 'monolithicSparse',
    version: header.version,
    zeroedGrains: counts.zeroed,
  }
  if (embeddedDescriptor !== undefined) facts.embeddedDescriptor = embeddedDescriptor
  return facts
}

/**
 * The end of a stream-optimized VMDK: [footer marker][footer: "KDMV" + header][end-of-stream marker],
 * one sector each. The footer's header is the authoritative one.
 */
async function readFooter(reader: WindowReader, corrupt: (why: string) => H2KError): Promise<Header> {
  if (reader.size % SECTOR !== 0) throw corrupt(`the header puts the grain directory at the end, but the file size (${reader.size}) is not a whole number of sectors: it is truncated`)
  if (reader.size < 4 * SECTOR) throw corrupt('the header puts the grain directory at the end, but the file is too small to hold a footer')
  const tail = await reader.read(reader.size - 3 * SECTOR, 3 * SECTOR, 'the footer')
  const marker = tail.subarray(0, SECTOR)
  const footer = tail.subarray(SECTOR, 2 * SECTOR)
  const eos = tail.subarray(2 * SECTOR)
  const eosValid = eos.readBigUInt64LE(0) === 0n && eos.readUInt32LE(8) === 0 && eos.readUInt32LE(12) === MARKER_EOS
  if (!eosValid) throw corrupt('the stream does not end with an end-of-stream marker: the file is truncated')
  if (marker.readUInt32LE(8) !== 0 || marker.readUInt32LE(12) !== MARKER_FOOTER || footer.subarray(0, 4).toString('latin1') !== MAGIC) {
    throw corrupt('the footer before the end-of-stream marker is missing or damaged: the file is truncated')
  }
  const header = parseHeader(footer)
  if (header.gdOffset === GD_AT_END) throw corrupt('the footer does not say where the grain directory is')
  return header
}

async function readEmbeddedDescriptor(reader: WindowReader, header: Header, corrupt: (why: string) => H2KError): Promise<string | undefined> {
  if (header.descriptorOffset === 0n) return undefined
  if (header.descriptorSize === 0n) throw corrupt('the header points at an embedded descriptor of size 0')
  if (header.descriptorSize > MAX_DESCRIPTOR_SECTORS) throw corrupt(`the embedded descriptor of ${header.descriptorSize} sectors is implausibly large`)
  const offset = bytesAt(header.descriptorOffset, 'the embedded descriptor offset', corrupt)
  const bytes = await reader.read(offset, Number(header.descriptorSize) * SECTOR, 'the embedded descriptor')
  const end = bytes.indexOf(0)
  const text = bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8')
  // qemu reserves the region in split extents but leaves it empty: that is no descriptor.
  return text.trim().length > 0 ? text : undefined
}

interface TableCheck {
  directory: Buffer
  gtesPerGT: number
  grainBytes: number
  capacityBytes: number
  compressed: boolean
  zeroGrainFlag: boolean
  corrupt: (why: string) => H2KError
}

/**
 * Every grain table the directory points at must lie inside the file, and every allocated entry in it
 * must point at a grain that does. Tables are read once each (a hostile directory may point many entries
 * at one table), in batches of adjacent tables, so the work is bounded by the metadata actually present.
 */
async function checkGrainTables(reader: WindowReader, check: TableCheck): Promise<{allocated: number; zeroed: number}> {
  const {directory, gtesPerGT, grainBytes, capacityBytes, compressed, zeroGrainFlag, corrupt} = check
  const gtBytes = gtesPerGT * 4
  const grainsInDisk = Math.ceil(capacityBytes / grainBytes)

  // Distinct tables by sector, with the first directory index that uses each.
  const tables = new Map<number, number>()
  for (let index = 0; index < directory.length / 4; index++) {
    const sector = directory.readUInt32LE(index * 4)
    if (sector === 0) continue // table not allocated: the whole range reads as zeros (or from the parent)
    const offset = sector * SECTOR
    if (offset + gtBytes > reader.size) {
      throw corrupt(`grain table ${index} (bytes ${offset}..${offset + gtBytes}) lies beyond the end of the file (${reader.size} bytes): the file is truncated`)
    }
    if (!tables.has(sector)) tables.set(sector, index)
  }

  let allocated = 0
  let zeroed = 0
  let lastCompressed: {offset: number; grain: number} | undefined
  const sectors = [...tables.keys()].sort((a, b) => a - b)
  for (let start = 0; start < sectors.length; ) {
    // Batch tables that sit back to back, as every writer lays them out.
    let end = start + 1
    while (end < sectors.length && sectors[end]! === sectors[end - 1]! + gtBytes / SECTOR && (end - start + 1) * gtBytes <= READ_BATCH) end++
    const batch = await reader.read(sectors[start]! * SECTOR, (end - start) * gtBytes, 'a grain table')
    for (let i = start; i < end; i++) {
      const sector = sectors[i]!
      const table = batch.subarray((i - start) * gtBytes, (i - start + 1) * gtBytes)
      const directoryIndex = tables.get(sector)!
      for (let entry = 0; entry < gtesPerGT; entry++) {
        const grain = directoryIndex * gtesPerGT + entry
        if (grain >= grainsInDisk) break // entries past the capacity are never read
        const value = table.readUInt32LE(entry * 4)
        if (value === 0) continue
        if (value === 1 && zeroGrainFlag) {
          zeroed++
          continue
        }
        allocated++
        const offset = value * SECTOR
        // The last grain of a disk whose size is not a whole number of grains may be stored short.
        const needed = compressed ? GRAIN_MARKER_HEADER : Math.min(grainBytes, capacityBytes - grain * grainBytes)
        if (offset + needed > reader.size) {
          throw corrupt(`grain ${grain} (guest bytes ${grain * grainBytes}..${(grain + 1) * grainBytes}) is stored at bytes ${offset}..${offset + needed}, beyond the end of the file (${reader.size} bytes): the file is truncated`)
        }
        if (compressed && (lastCompressed === undefined || offset > lastCompressed.offset)) lastCompressed = {grain, offset}
      }
    }
    start = end
  }

  // A truncated stream most likely cut its last grain short: check that one's compressed length fits.
  if (lastCompressed) {
    const marker = await reader.read(lastCompressed.offset, GRAIN_MARKER_HEADER, 'the last compressed grain')
    const length = marker.readUInt32LE(8)
    if (length === 0 || lastCompressed.offset + GRAIN_MARKER_HEADER + length > reader.size) {
      throw corrupt(`the last compressed grain (at byte ${lastCompressed.offset}, ${length} bytes) runs past the end of the file (${reader.size} bytes): the file is truncated`)
    }
  }
  return {allocated, zeroed}
}
