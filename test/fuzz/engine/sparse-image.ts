import {open} from 'node:fs/promises'

/**
 * Disk images are megabytes of zeros around a few KiB of structure; fuzzing them byte for byte would spend
 * every mutation on zeros. A sparse image input is the file's size and its non-zero chunks:
 *   u32le size, then repeated { u32le offset, u16le length, length bytes }
 * (a chunk cut short by the end of the input keeps what is there; chunks beyond `size` are clipped).
 */
export const MAX_SPARSE_SIZE = 256 * 1024 * 1024

export interface SparseImage {
  size: number
  chunks: Array<{offset: number; bytes: Buffer}>
}

export function decodeSparseImage(data: Buffer): SparseImage {
  const size = data.length >= 4 ? Math.min(data.readUInt32LE(0), MAX_SPARSE_SIZE) : 0
  const chunks: SparseImage['chunks'] = []
  let at = 4
  while (at + 6 <= data.length) {
    const offset = data.readUInt32LE(at)
    const length = data.readUInt16LE(at + 4)
    const bytes = data.subarray(at + 6, Math.min(at + 6 + length, data.length))
    at += 6 + length
    if (offset >= size) continue
    chunks.push({offset, bytes: bytes.subarray(0, size - offset)})
  }
  return {size, chunks}
}

/** The encoding of a real image: its non-zero 512-byte blocks, merged into runs (for seeds). */
export function encodeSparseImage(image: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)]
  parts[0]?.writeUInt32LE(image.length)
  let block = 0
  while (block * 512 < image.length) {
    const start = block * 512
    if (!image.subarray(start, start + 512).some((byte) => byte !== 0)) {
      block++
      continue
    }
    let end = start
    while (end < image.length && end - start < 0xfe00 && image.subarray(end, end + 512).some((byte) => byte !== 0)) end += 512
    const bytes = image.subarray(start, Math.min(end, image.length))
    const head = Buffer.alloc(6)
    head.writeUInt32LE(start)
    head.writeUInt16LE(bytes.length, 4)
    parts.push(head, bytes)
    block = Math.ceil(end / 512)
  }
  return Buffer.concat(parts)
}

/** Write the image a sparse input describes to `file` (holes for the zeros); `patch` may fix it up first. */
export async function writeSparseImage(file: string, image: SparseImage): Promise<void> {
  const handle = await open(file, 'w')
  try {
    await handle.truncate(image.size)
    for (const chunk of image.chunks) await handle.write(chunk.bytes, 0, chunk.bytes.length, chunk.offset)
  } finally {
    await handle.close()
  }
}
