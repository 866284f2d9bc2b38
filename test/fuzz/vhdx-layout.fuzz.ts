// The VHDX reader (headers, region tables, metadata, BAT, runs), fed a sparse image input. Header and
// region-table checksums that are zero in the input are filled in, so mutations get past the CRC.
import {join} from 'node:path'

import {crc32c} from '../../plugins/hyperv/src/crc32c.js'
import {parseGuid, readVhdxLayout, VHDX_GUIDS, VhdxError} from '../../plugins/hyperv/src/vhdx-layout.js'
import {decodeSparseImage, type SparseImage, writeSparseImage} from './engine/sparse-image.js'
import type {FuzzTarget} from './engine/target.js'

const KiB = 1024
/** Headers at 64 and 128 KiB (4 KiB each), region tables at 192 and 256 KiB (64 KiB each); checksum at byte 4. */
const CHECKSUMMED = [
  {offset: 64 * KiB, size: 4 * KiB},
  {offset: 128 * KiB, size: 4 * KiB},
  {offset: 192 * KiB, size: 64 * KiB},
  {offset: 256 * KiB, size: 64 * KiB},
]
/** Runs walked per input: enough to cover the run generator, bounded so a huge sparse disk stays fast. */
const MAX_RUNS = 4096

function fillChecksums(image: SparseImage): SparseImage {
  const chunks = [...image.chunks]
  for (const area of CHECKSUMMED) {
    if (area.offset + area.size > image.size) continue
    const bytes = Buffer.alloc(area.size)
    for (const chunk of chunks) {
      const from = Math.max(chunk.offset, area.offset)
      const to = Math.min(chunk.offset + chunk.bytes.length, area.offset + area.size)
      if (from < to) chunk.bytes.copy(bytes, from - area.offset, from - chunk.offset, to - chunk.offset)
    }
    if (!bytes.subarray(0, 4).some((byte) => byte !== 0) || bytes.readUInt32LE(4) !== 0) continue
    bytes.writeUInt32LE(crc32c(bytes), 4)
    chunks.push({offset: area.offset, bytes})
  }
  return {size: image.size, chunks}
}

export const target: FuzzTarget = {
  async run(data, scratch) {
    const file = join(scratch, 'input.vhdx')
    await writeSparseImage(file, fillChecksums(decodeSparseImage(data)))
    const layout = await readVhdxLayout(file)
    let runs = 0
    for await (const run of layout.runs) {
      void run
      if (++runs >= MAX_RUNS) break
    }
  },
  refusalCode: (error) => (error instanceof VhdxError ? error.code : undefined),
  maxLength: 64 * 1024,
  dictionary: [
    'vhdxfile', 'head', 'regi', 'loge', 'metadata', Buffer.from([0, 0, 0, 0]), Buffer.from([0, 0, 0x10, 0]), Buffer.from([0, 0, 0, 2]),
    ...Object.values(VHDX_GUIDS).map((guid) => parseGuid(guid)),
  ],
}
