import {constants} from 'node:fs'
import {open} from 'node:fs/promises'
import {extname} from 'node:path'

import {detectImageFormat} from '@hyper2kvm/plugin-api'
import {type ByteSource, COMPLETE, type Completeness, fileSource, incomplete} from './byte-source.js'
import {qcow2Completeness} from './qcow2.js'
import {tarCompleteness} from './tar-archive.js'
import {vhdCompleteness} from './vhd.js'
import {vhdxCompleteness} from './vhdx.js'
import {sparseVmdkCompleteness} from './vmdk-sparse.js'

/** The check for a file's format, by its first bytes (and its name for the formats without a head magic). */
export async function completenessOf(source: ByteSource, name: string): Promise<Completeness> {
  const head = await source.read(0, 512)
  const ext = extname(name).toLowerCase()
  const format = detectImageFormat(head)
  if (format === 'vmdk') return sparseVmdkCompleteness(source)
  if (format === 'vpc' || ext === '.vhd' || ext === '.vpc') return vhdCompleteness(source)
  if (format === 'vhdx') return vhdxCompleteness(source)
  if (format === 'qcow2') return qcow2Completeness(source)
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return tarCompleteness(source)
  if ((ext === '.ova' || ext === '.tar') && head.length < 512) return incomplete('the first archive header has not fully arrived')
  return COMPLETE
}

/**
 * Whether the file at `path` has arrived whole, for the formats that say where they end. Opened without
 * following a symlink and without blocking on a FIFO: what is not a regular file is not judged here (the
 * intake refuses it).
 */
export async function fileCompleteness(path: string, name: string): Promise<Completeness> {
  return (await withRegularFile(path, (source) => completenessOf(source, name))) ?? COMPLETE
}

/** The first `length` bytes of a regular file of at most `maxSize` bytes (a text descriptor), else undefined. */
export async function smallFileHead(path: string, length: number, maxSize: number): Promise<Buffer | undefined> {
  return withRegularFile(path, async (source) => (source.size <= maxSize ? source.read(0, length) : undefined))
}

/** Run `fn` over the file when it is a regular file (opened without following a symlink or blocking on a FIFO). */
async function withRegularFile<T>(path: string, fn: (source: ByteSource) => Promise<T>): Promise<T | undefined> {
  let handle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch {
    return undefined // gone or not openable: the claim finds out and says so
  }
  try {
    const info = await handle.stat()
    return info.isFile() ? await fn(fileSource(handle, info.size)) : undefined
  } finally {
    await handle.close()
  }
}
