import {constants} from 'node:fs'
import {open} from 'node:fs/promises'
import {extname} from 'node:path'

import {detectImageFormat} from '../../formats/image-magic.js'
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
  let handle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch {
    return COMPLETE // gone or not openable: the claim finds out and says so
  }
  try {
    const info = await handle.stat()
    if (!info.isFile()) return COMPLETE
    return await completenessOf(fileSource(handle, info.size), name)
  } finally {
    await handle.close()
  }
}
