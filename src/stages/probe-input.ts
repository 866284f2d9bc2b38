import {open, stat} from 'node:fs/promises'
import {extname, resolve} from 'node:path'

import {BARE_FILESYSTEM_HEAD, H2KError, type ProbeInput, readUpTo} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'

// Enough for every magic the loaders look for; the btrfs superblock is the farthest (64 KiB + 64).
const HEAD_BYTES = Math.max(64 * 1024, BARE_FILESYSTEM_HEAD)

/** Look at the user's input once: existence, kind, size and its first bytes for the loaders' probes. */
export async function readProbeInput(path: string): Promise<ProbeInput> {
  const absolute = resolve(path)
  const info = await stat(absolute).catch((error: unknown) => {
    throw mapForeignError(error, {path: absolute, phase: 'load'})
  })
  if (!info.isFile() && !info.isDirectory()) {
    throw new H2KError('H2K_INPUT_UNRECOGNIZED', `${absolute} is neither a regular file nor a directory.`, {phase: 'load'})
  }
  if (info.isFile() && info.size === 0) {
    throw new H2KError('H2K_INPUT_EMPTY', `${absolute} is empty (0 bytes).`, {details: {path: absolute}, phase: 'load'})
  }
  let head: Buffer = Buffer.alloc(0)
  if (info.isFile()) {
    const handle = await open(absolute, 'r').catch((error: unknown) => {
      throw mapForeignError(error, {path: absolute, phase: 'load'})
    })
    try {
      head = await readUpTo(handle, 0, Math.min(HEAD_BYTES, info.size))
    } finally {
      await handle.close()
    }
  }
  return {extension: extname(absolute).toLowerCase(), head, isDirectory: info.isDirectory(), path: absolute, size: info.size}
}
