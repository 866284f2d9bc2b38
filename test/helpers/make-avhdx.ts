/**
 * TEST-ONLY: builds a Hyper-V differencing VHDX (.avhdx) from a dynamic VHDX that qemu-img created. No Linux
 * tool writes differencing VHDX files, and the product never writes image formats by hand; tests need such
 * files to exercise readVhdxLayout and buildDifferencingOverlay.
 *
 * The template must come straight from `qemu-img create -f vhdx` (no data written yet) with the virtual size
 * of the parent. We copy it and patch the copy:
 *   - File Parameters: set HasParent;
 *   - add a Parent Locator metadata item (VHDX locator type, parent_linkage / relative_path /
 *     absolute_win32_path);
 *   - append a payload block for every block the writes touch (FULLY_PRESENT when every sector of the block is
 *     written, else PARTIALLY_PRESENT) and one sector bitmap block per chunk that has partial blocks;
 *   - rewrite the BAT (everything else NOT_PRESENT: qemu marks fresh blocks ZERO, which in a child would hide
 *     the parent), then refresh both headers (new write GUIDs, sequence number + 1) and their CRC-32C, and the
 *     region tables' CRC-32C.
 */
import {randomUUID} from 'node:crypto'
import {copyFile, open, type FileHandle} from 'node:fs/promises'
import {basename} from 'node:path'

import {crc32c} from '../../plugins/hyperv/src/crc32c.js'
import {parseGuid, VHDX_GUIDS} from '../../plugins/hyperv/src/vhdx-layout.js'

const KiB = 1024
const MiB = 1024 * KiB
const HEADER_OFFSETS = [64 * KiB, 128 * KiB]
const REGION_TABLE_OFFSETS = [192 * KiB, 256 * KiB]

const PAYLOAD_BLOCK_ZERO = 2n
const PAYLOAD_BLOCK_FULLY_PRESENT = 6n
const PAYLOAD_BLOCK_PARTIALLY_PRESENT = 7n
const SB_BLOCK_PRESENT = 6n
/** Metadata entry flag IsRequired. */
const METADATA_IS_REQUIRED = 4

export interface DifferencingVhdxOptions {
  /** A dynamic VHDX fresh from `qemu-img create -f vhdx`, same virtual size as the parent. */
  template: string
  out: string
  /** Parent path relative to the child, e.g. `parent.vhdx`; stored Windows style (`.\parent.vhdx`). */
  parentRelativePath: string
  /** Guest data the child holds; offsets and lengths in whole logical sectors. */
  writes: Array<{offset: number; data: Buffer}>
  /** parent_linkage GUID (Hyper-V stores the parent's DataWriteGuid); random when absent. */
  parentLinkage?: string
  /** absolute_win32_path; `C:\VMs\<name>` when absent. */
  parentAbsoluteWin32Path?: string
  /** Payload block indexes to mark PAYLOAD_BLOCK_ZERO: zeros that hide the parent's data. */
  zeroBlocks?: number[]
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length)
  const {bytesRead} = await fh.read(buf, 0, length, position)
  if (bytesRead !== length) throw new Error(`short read at ${position}`)
  return buf
}

async function writeAt(fh: FileHandle, position: number, data: Buffer): Promise<void> {
  const {bytesWritten} = await fh.write(data, 0, data.length, position)
  if (bytesWritten !== data.length) throw new Error(`short write at ${position}`)
}

/** Stores a CRC-32C of `buf` (computed with the checksum field zeroed) at offset 4, as headers and region tables do. */
export function setChecksum(buf: Buffer): void {
  buf.writeUInt32LE(0, 4)
  buf.writeUInt32LE(crc32c(buf), 4)
}

const guidEquals = (bytes: Buffer, guid: string) => bytes.equals(parseGuid(guid))

/** The Parent Locator metadata item: header, key/value entries, then the UTF-16LE strings. */
function parentLocatorItem(entries: Array<[string, string]>): Buffer {
  const headerSize = 20 + entries.length * 12
  const strings: Buffer[] = []
  const table = Buffer.alloc(headerSize)
  parseGuid(VHDX_GUIDS.vhdxParentLocatorType).copy(table, 0)
  table.writeUInt16LE(entries.length, 18)
  let at = headerSize
  for (const [i, [key, value]] of entries.entries()) {
    const k = Buffer.from(key, 'utf16le')
    const v = Buffer.from(value, 'utf16le')
    table.writeUInt32LE(at, 20 + i * 12)
    table.writeUInt32LE(at + k.length, 20 + i * 12 + 4)
    table.writeUInt16LE(k.length, 20 + i * 12 + 8)
    table.writeUInt16LE(v.length, 20 + i * 12 + 10)
    strings.push(k, v)
    at += k.length + v.length
  }
  return Buffer.concat([table, ...strings])
}

export async function makeDifferencingVhdx(opts: DifferencingVhdxOptions): Promise<void> {
  await copyFile(opts.template, opts.out)
  const fh = await open(opts.out, 'r+')
  try {
    // Region table: where the BAT and the metadata live.
    const regions = await readAt(fh, REGION_TABLE_OFFSETS[0]!, 64 * KiB)
    let bat = {offset: 0, length: 0}
    let meta = {offset: 0, length: 0}
    for (let i = 0; i < regions.readUInt32LE(8); i++) {
      const e = 16 + i * 32
      const region = {offset: Number(regions.readBigUInt64LE(e + 16)), length: regions.readUInt32LE(e + 24)}
      if (guidEquals(regions.subarray(e, e + 16), VHDX_GUIDS.batRegion)) bat = region
      if (guidEquals(regions.subarray(e, e + 16), VHDX_GUIDS.metadataRegion)) meta = region
    }
    if (bat.length === 0 || meta.length === 0) throw new Error('template has no BAT or metadata region')

    // Metadata table: the items we need and the first free byte after them.
    const table = await readAt(fh, meta.offset, 64 * KiB)
    const count = table.readUInt16LE(10)
    const itemOffset = new Map<string, number>()
    let freeOffset = 64 * KiB
    for (let i = 0; i < count; i++) {
      const e = 32 + i * 32
      for (const guid of [VHDX_GUIDS.fileParameters, VHDX_GUIDS.virtualDiskSize, VHDX_GUIDS.logicalSectorSize]) {
        if (guidEquals(table.subarray(e, e + 16), guid)) itemOffset.set(guid, table.readUInt32LE(e + 16))
      }
      freeOffset = Math.max(freeOffset, table.readUInt32LE(e + 16) + table.readUInt32LE(e + 20))
    }
    const item = async (guid: string, length: number) => {
      const offset = itemOffset.get(guid)
      if (offset === undefined) throw new Error(`template lacks metadata item ${guid}`)
      return {buf: await readAt(fh, meta.offset + offset, length), offset}
    }
    const fileParameters = await item(VHDX_GUIDS.fileParameters, 8)
    const blockSize = fileParameters.buf.readUInt32LE(0)
    const virtualSize = Number((await item(VHDX_GUIDS.virtualDiskSize, 8)).buf.readBigUInt64LE(0))
    const sectorSize = (await item(VHDX_GUIDS.logicalSectorSize, 4)).buf.readUInt32LE(0)
    const sectorsPerBlock = blockSize / sectorSize
    const chunkRatio = (2 ** 23 * sectorSize) / blockSize
    const dataBlocks = Math.ceil(virtualSize / blockSize)
    const batEntries = Math.ceil(dataBlocks / chunkRatio) * (chunkRatio + 1)
    if (batEntries * 8 > bat.length) throw new Error('BAT region too small for a differencing disk')

    // The template must not hold data yet: we rewrite its whole BAT.
    const oldBat = await readAt(fh, bat.offset, batEntries * 8)
    for (let i = 0; i < batEntries; i++) {
      const state = oldBat.readUInt32LE(i * 8) & 7
      if (state === 6 || state === 7) throw new Error('template already has allocated blocks; use a fresh qemu-img create')
    }
    const newBat = Buffer.alloc(batEntries * 8) // all NOT_PRESENT
    const batIndex = (block: number) => block + Math.floor(block / chunkRatio)

    // Gather the writes per payload block: the block's bytes and which of its sectors are written.
    const blocks = new Map<number, {data: Buffer; present: Uint8Array}>()
    for (const {offset, data} of opts.writes) {
      if (offset % sectorSize !== 0 || data.length % sectorSize !== 0 || offset + data.length > virtualSize) {
        throw new Error(`write at ${offset} (+${data.length}) is not whole sectors inside the disk`)
      }
      for (let done = 0; done < data.length;) {
        const pos = offset + done
        const index = Math.floor(pos / blockSize)
        const within = pos - index * blockSize
        const n = Math.min(blockSize - within, data.length - done)
        let block = blocks.get(index)
        if (!block) blocks.set(index, (block = {data: Buffer.alloc(blockSize), present: new Uint8Array(sectorsPerBlock)}))
        data.copy(block.data, within, done, done + n)
        block.present.fill(1, within / sectorSize, (within + n) / sectorSize)
        done += n
      }
    }

    // Append payload blocks (1 MiB aligned) and set their BAT entries; collect sector bitmaps per chunk.
    let fileEnd = Math.ceil((await fh.stat()).size / MiB) * MiB
    const bitmaps = new Map<number, Buffer>()
    for (const index of [...blocks.keys()].sort((a, b) => a - b)) {
      const block = blocks.get(index)!
      const validSectors = Math.min(blockSize, virtualSize - index * blockSize) / sectorSize
      const full = block.present.subarray(0, validSectors).every((bit) => bit === 1)
      await writeAt(fh, fileEnd, block.data)
      const state = full ? PAYLOAD_BLOCK_FULLY_PRESENT : PAYLOAD_BLOCK_PARTIALLY_PRESENT
      newBat.writeBigUInt64LE((BigInt(fileEnd / MiB) << 20n) | state, batIndex(index) * 8)
      fileEnd += blockSize
      if (!full) {
        // One bit per sector of the chunk, bit 0 of byte 0 first; 1 = this file holds the sector.
        const chunk = Math.floor(index / chunkRatio)
        let bitmap = bitmaps.get(chunk)
        if (!bitmap) bitmaps.set(chunk, (bitmap = Buffer.alloc(MiB)))
        const firstSector = (index % chunkRatio) * sectorsPerBlock
        for (let s = 0; s < validSectors; s++) {
          if (block.present[s]) bitmap[(firstSector + s) >>> 3]! |= 1 << ((firstSector + s) & 7)
        }
      }
    }
    for (const index of opts.zeroBlocks ?? []) {
      if (blocks.has(index) || index >= dataBlocks) throw new Error(`zero block ${index} is written or outside the disk`)
      newBat.writeBigUInt64LE(PAYLOAD_BLOCK_ZERO, batIndex(index) * 8)
    }
    for (const [chunk, bitmap] of bitmaps) {
      await writeAt(fh, fileEnd, bitmap)
      newBat.writeBigUInt64LE((BigInt(fileEnd / MiB) << 20n) | SB_BLOCK_PRESENT, (chunk * (chunkRatio + 1) + chunkRatio) * 8)
      fileEnd += MiB
    }
    await writeAt(fh, bat.offset, newBat)

    // Metadata: HasParent, and a Parent Locator item after the existing items.
    fileParameters.buf.writeUInt32LE(fileParameters.buf.readUInt32LE(4) | 2, 4)
    await writeAt(fh, meta.offset + fileParameters.offset, fileParameters.buf)
    const relative = opts.parentRelativePath.replaceAll('/', '\\')
    const locator = parentLocatorItem([
      ['parent_linkage', `{${opts.parentLinkage ?? randomUUID()}}`],
      ['relative_path', relative.startsWith('.\\') || relative.startsWith('..\\') ? relative : `.\\${relative}`],
      ['absolute_win32_path', opts.parentAbsoluteWin32Path ?? `C:\\VMs\\${basename(opts.parentRelativePath)}`],
    ])
    const locatorOffset = Math.ceil(freeOffset / 4096) * 4096
    if (locatorOffset + locator.length > meta.length) throw new Error('no room for the parent locator')
    await writeAt(fh, meta.offset + locatorOffset, locator)
    const entry = Buffer.alloc(32)
    parseGuid(VHDX_GUIDS.parentLocator).copy(entry, 0)
    entry.writeUInt32LE(locatorOffset, 16)
    entry.writeUInt32LE(locator.length, 20)
    entry.writeUInt32LE(METADATA_IS_REQUIRED, 24)
    entry.copy(table, 32 + count * 32)
    table.writeUInt16LE(count + 1, 10)
    await writeAt(fh, meta.offset, table)

    // Headers: new write GUIDs, next sequence number, fresh CRC-32C. Region tables: fresh CRC-32C.
    const fileWriteGuid = parseGuid(randomUUID())
    const dataWriteGuid = parseGuid(randomUUID())
    for (const offset of HEADER_OFFSETS) {
      const header = await readAt(fh, offset, 4 * KiB)
      header.writeBigUInt64LE(header.readBigUInt64LE(8) + 1n, 8)
      fileWriteGuid.copy(header, 16)
      dataWriteGuid.copy(header, 32)
      setChecksum(header)
      await writeAt(fh, offset, header)
    }
    for (const offset of REGION_TABLE_OFFSETS) {
      const region = await readAt(fh, offset, 64 * KiB)
      setChecksum(region)
      await writeAt(fh, offset, region)
    }
  } finally {
    await fh.close()
  }
}
