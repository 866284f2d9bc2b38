import {type ByteSource, COMPLETE, type Completeness, incomplete, readExact} from './byte-source.js'

/**
 * Has a VHDX arrived whole? Its first MiB (identifier, two headers, two region tables) must be there; the
 * header in use names the log, the region table the BAT and metadata regions: all must lie inside the
 * file. Then the BAT (read when at most 64 MiB) must not point at a payload or sector-bitmap block past
 * the end. Checksums and everything else are the loader's business (plugins/hyperv: vhdx-layout.ts);
 * whatever does not parse here is "complete" and refused there with a reason.
 */

const KiB = 1024
const MiB = 1024 * KiB
const HEADERS = [64 * KiB, 128 * KiB]
const REGION_TABLE = 192 * KiB
const BAT_GUID = '6677c22d23f600429d64115e9bfd4a08'
const METADATA_GUID = '06a27c8b90479a4bb8fe575f050f886e'
const FILE_PARAMETERS_GUID = '3767a1ca36fa434db3b633f0aa44e76b'
const LOGICAL_SECTOR_GUID = '1dbf41816fa90947ba47f233a8faab5f'
const MAX_BAT_BYTES = 64 * MiB
const FULLY_PRESENT = 6
const PARTIALLY_PRESENT = 7

interface Region {
  offset: number
  length: number
}

export async function vhdxCompleteness(source: ByteSource): Promise<Completeness> {
  const head = await readExact(source, 0, MiB)
  if (!head) return incomplete('the VHDX headers and region table (its first MiB) have not fully arrived')
  // The current header is the one with the higher sequence number.
  const headers = HEADERS.map((at) => head.subarray(at, at + 4 * KiB)).filter((h) => h.toString('latin1', 0, 4) === 'head')
  const current = headers.sort((a, b) => (a.readBigUInt64LE(8) < b.readBigUInt64LE(8) ? 1 : -1))[0]
  if (current) {
    const log = {length: current.readUInt32LE(68), offset: Number(current.readBigUInt64LE(72))}
    if (log.length > 0 && !inside(source, log)) return incomplete('the VHDX log lies beyond the end of the file so far')
  }
  const table = head.subarray(REGION_TABLE, REGION_TABLE + 64 * KiB)
  if (table.toString('latin1', 0, 4) !== 'regi') return COMPLETE
  const count = Math.min(table.readUInt32LE(8), 2047)
  let bat: Region | undefined
  let metadata: Region | undefined
  for (let i = 0; i < count; i++) {
    const entry = table.subarray(16 + i * 32, 48 + i * 32)
    const region = {length: entry.readUInt32LE(24), offset: Number(entry.readBigUInt64LE(16))}
    const guid = entry.toString('hex', 0, 16)
    if (!inside(source, region)) return incomplete('a VHDX region (BAT or metadata) lies beyond the end of the file so far')
    if (guid === BAT_GUID) bat = region
    if (guid === METADATA_GUID) metadata = region
  }
  if (!bat || !metadata) return COMPLETE
  return blocksInside(source, bat, metadata)
}

function inside(source: ByteSource, region: Region): boolean {
  return Number.isSafeInteger(region.offset + region.length) && region.offset + region.length <= source.size
}

/** The block size and logical sector size from the metadata region, when both are there and sane. */
async function geometry(source: ByteSource, metadata: Region): Promise<{blockSize: number; sectorSize: number} | undefined> {
  const table = await readExact(source, metadata.offset, 64 * KiB)
  if (!table || table.toString('latin1', 0, 8) !== 'metadata') return undefined
  const count = Math.min(table.readUInt16LE(10), 2047)
  const items = new Map<string, Buffer>()
  for (let i = 0; i < count; i++) {
    const entry = table.subarray(32 + i * 32, 64 + i * 32)
    const length = entry.readUInt32LE(20)
    if (length < 4 || length > 64 * KiB) continue
    const item = await readExact(source, metadata.offset + entry.readUInt32LE(16), 4)
    if (item) items.set(entry.toString('hex', 0, 16), item)
  }
  const blockSize = items.get(FILE_PARAMETERS_GUID)?.readUInt32LE(0) ?? 0
  const sectorSize = items.get(LOGICAL_SECTOR_GUID)?.readUInt32LE(0) ?? 0
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0 || (sectorSize !== 512 && sectorSize !== 4096)) return undefined
  return {blockSize, sectorSize}
}

/** Every present payload block and sector bitmap block the BAT names ends inside the file. */
async function blocksInside(source: ByteSource, bat: Region, metadata: Region): Promise<Completeness> {
  const shape = await geometry(source, metadata)
  if (!shape || bat.length > MAX_BAT_BYTES) return COMPLETE
  const chunkRatio = (2 ** 23 * shape.sectorSize) / shape.blockSize
  const entries = await readExact(source, bat.offset, bat.length)
  if (!entries) return incomplete('the VHDX BAT has not fully arrived')
  for (let index = 0; index * 8 + 8 <= entries.length; index++) {
    const entry = entries.readBigUInt64LE(index * 8)
    const state = Number(entry & 7n)
    if (state !== FULLY_PRESENT && state !== PARTIALLY_PRESENT) continue
    // Every (chunkRatio + 1)th entry is a sector bitmap block (1 MiB); the others are payload blocks.
    const bitmap = (index + 1) % (chunkRatio + 1) === 0
    const block = {length: bitmap ? MiB : shape.blockSize, offset: Number(entry >> 20n) * MiB}
    if (!inside(source, block)) return incomplete(`a VHDX ${bitmap ? 'sector bitmap' : 'payload'} block lies beyond the end of the file so far`)
  }
  return COMPLETE
}
