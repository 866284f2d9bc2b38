import {readUpTo} from '@hyper2kvm/plugin-api'
import type {FileHandle} from 'node:fs/promises'

/**
 * What a completeness check may do with a file: know its size and read bytes at an offset. Checks are pure
 * functions over this, so a test hands them a Buffer and the daemon an open file.
 */
export interface ByteSource {
  readonly size: number
  /** Up to `length` bytes at `position` (fewer only at the end of the data). */
  read(position: number, length: number): Promise<Buffer>
}

/** Whether a check saw the whole file, or what it still waits for (no bytes of the file in `reason`). */
export type Completeness = {complete: true} | {complete: false; reason: string}

export const COMPLETE: Completeness = {complete: true}
export const incomplete = (reason: string): Completeness => ({complete: false, reason})

export function bufferSource(bytes: Buffer): ByteSource {
  return {
    read: async (position, length) => bytes.subarray(position, Math.min(bytes.length, position + length)),
    size: bytes.length,
  }
}

export function fileSource(handle: FileHandle, size: number): ByteSource {
  return {
    async read(position, length) {
      return readUpTo(handle, position, Math.min(length, size - position))
    },
    size,
  }
}

/** Exactly `length` bytes at `position`, or undefined when the data ends before. */
export async function readExact(source: ByteSource, position: number, length: number): Promise<Buffer | undefined> {
  if (position < 0 || position + length > source.size) return undefined
  const bytes = await source.read(position, length)
  return bytes.length === length ? bytes : undefined
}
