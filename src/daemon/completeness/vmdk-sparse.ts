import {type ByteSource, COMPLETE, type Completeness, incomplete, readExact} from './byte-source.js'

/**
 * Has a hosted sparse VMDK ("KDMV") arrived whole? A stream written in one pass (VMware: the header says
 * "grain directory at end") is whole once its tail is [footer marker][footer header][end-of-stream marker].
 * Then, for every sparse/stream layout, the grain directory and tables must lie inside the file and the
 * grain stored furthest in must end inside it (qemu writes its streams with the tables at the front, so a
 * cut copy of one points past its end). Only what a cut copy gets wrong is looked at: a damaged file is
 * "complete" here and left to the loader's full validation (packages/plugin-api/src/formats/vmdk-sparse.ts) to refuse.
 */

const SECTOR = 512
const GD_AT_END = 0xffffffffffffffffn
const FLAG_COMPRESSED = 1 << 16
const MARKER_FOOTER = 3
/** A compressed grain starts with {lba: u64, size: u32}. */
const GRAIN_MARKER = 12
/** Grain tables read to find the last grain, at most (64 MiB: the tables of a 1 TiB disk in 64 KiB grains). */
const MAX_TABLE_BYTES = 64 * 1024 * 1024

interface Header {
  flags: number
  capacity: bigint
  grainSize: bigint
  gtesPerGT: number
  gdOffset: bigint
  overHead: bigint
  compressAlgorithm: number
}

function parseHeader(sector: Buffer): Header {
  return {
    capacity: sector.readBigUInt64LE(12),
    compressAlgorithm: sector.readUInt16LE(77),
    flags: sector.readUInt32LE(8),
    gdOffset: sector.readBigUInt64LE(56),
    grainSize: sector.readBigUInt64LE(20),
    gtesPerGT: sector.readUInt32LE(44),
    overHead: sector.readBigUInt64LE(64),
  }
}

export async function sparseVmdkCompleteness(source: ByteSource): Promise<Completeness> {
  const first = await readExact(source, 0, SECTOR)
  if (!first) return incomplete('the sparse VMDK header has not fully arrived')
  let header = parseHeader(first)
  if (header.gdOffset === GD_AT_END) {
    const tail = source.size % SECTOR === 0 && source.size >= 4 * SECTOR ? await readExact(source, source.size - 3 * SECTOR, 3 * SECTOR) : undefined
    if (!tail) return incomplete('the stream-optimized VMDK has no footer and end-of-stream marker yet')
    const marker = tail.subarray(0, SECTOR)
    const footer = tail.subarray(SECTOR, 2 * SECTOR)
    const eos = tail.subarray(2 * SECTOR)
    const eosOk = eos.readBigUInt64LE(0) === 0n && eos.readUInt32LE(8) === 0 && eos.readUInt32LE(12) === 0
    const footerOk = marker.readUInt32LE(8) === 0 && marker.readUInt32LE(12) === MARKER_FOOTER && footer.toString('latin1', 0, 4) === 'KDMV'
    if (!eosOk || !footerOk) return incomplete('the stream-optimized VMDK has no footer and end-of-stream marker yet')
    header = parseHeader(footer)
    if (header.gdOffset === GD_AT_END) return COMPLETE // a damaged footer: the loader refuses it
  }
  if (header.overHead * BigInt(SECTOR) > BigInt(source.size)) return incomplete('the VMDK metadata area (overHead) is not all there yet')
  return lastGrainInside(source, header)
}

/** The grain directory, its tables and the grain stored furthest in all end inside the file. */
async function lastGrainInside(source: ByteSource, header: Header): Promise<Completeness> {
  const {grainSize, gtesPerGT, capacity} = header
  // Values no writer produces: not a question of completeness.
  if (grainSize === 0n || grainSize > 65_536n || gtesPerGT === 0 || gtesPerGT > 512 || capacity === 0n || capacity > 2n ** 37n) return COMPLETE
  const tables = Number((capacity + grainSize * BigInt(gtesPerGT) - 1n) / (grainSize * BigInt(gtesPerGT)))
  if (tables * gtesPerGT * 4 > MAX_TABLE_BYTES) return COMPLETE
  const gdOffset = header.gdOffset * BigInt(SECTOR)
  if (gdOffset === 0n || gdOffset > BigInt(Number.MAX_SAFE_INTEGER)) return COMPLETE
  const directory = await readExact(source, Number(gdOffset), tables * 4)
  if (!directory) return incomplete('the VMDK grain directory lies beyond the end of the file so far')
  const gtBytes = gtesPerGT * 4
  const grainBytes = Number(grainSize) * SECTOR
  const grainsInDisk = Math.ceil((Number(capacity) * SECTOR) / grainBytes)
  let last = {grain: 0, sector: 0}
  for (let index = 0; index < tables; index++) {
    const sector = directory.readUInt32LE(index * 4)
    if (sector === 0) continue
    const table = await readExact(source, sector * SECTOR, gtBytes)
    if (!table) return incomplete('a VMDK grain table lies beyond the end of the file so far')
    for (let entry = 0; entry < gtesPerGT && index * gtesPerGT + entry < grainsInDisk; entry++) {
      const stored = table.readUInt32LE(entry * 4)
      if (stored > last.sector) last = {grain: index * gtesPerGT + entry, sector: stored}
    }
  }
  if (last.sector <= 1) return COMPLETE // no grain stored (1 is the zeroed-grain mark)
  const offset = last.sector * SECTOR
  const compressed = header.compressAlgorithm !== 0 || (header.flags & FLAG_COMPRESSED) !== 0
  if (compressed) {
    const marker = await readExact(source, offset, GRAIN_MARKER)
    if (!marker || offset + GRAIN_MARKER + marker.readUInt32LE(8) > source.size) return incomplete('the last compressed VMDK grain has not fully arrived')
    return COMPLETE
  }
  // The disk's last grain may be stored short when the capacity is not a whole number of grains.
  const needed = Math.min(grainBytes, Number(capacity) * SECTOR - last.grain * grainBytes)
  return offset + needed <= source.size ? COMPLETE : incomplete('the last VMDK grain has not fully arrived')
}
