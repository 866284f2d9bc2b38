import {type FileHandle, open} from 'node:fs/promises'

/**
 * Up to `length` bytes at `position` of an open file, fewer only where the file ends. One `read()` may
 * return less than asked without being at the end (a pipe, a network file system), so this loops.
 */
export async function readUpTo(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(Math.max(length, 0))
  let done = 0
  while (done < buffer.length) {
    const {bytesRead} = await handle.read(buffer, done, buffer.length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return buffer.subarray(0, done)
}

/**
 * Exactly `length` bytes at `position` of an open file. When the file ends first, throws what `short`
 * returns for the bytes it did get (each format says "truncated" in its own words and code).
 */
export async function readExact(handle: FileHandle, position: number, length: number, short: (bytesRead: number) => Error): Promise<Buffer> {
  const bytes = await readUpTo(handle, position, length)
  if (bytes.length < length) throw short(bytes.length)
  return bytes
}

/** Read up to `length` bytes at `position` of a file (fewer at its end). */
export async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    return await readUpTo(handle, position, length)
  } finally {
    await handle.close()
  }
}
