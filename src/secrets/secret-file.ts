import {constants} from 'node:fs'
import {lstat, open} from 'node:fs/promises'

import {H2KError} from '@hyper2kvm/plugin-api'
import {ownedByUsOrRoot} from '../fs/trusted-owner.js'

/** A secret larger than this is not a password or token: refused without being read. */
export const SECRET_MAX_BYTES = 64 * 1024

export interface SecretFileOptions {
  /** The file must be owned by us (or root) and have no group/other permission bits (`*_file` keys). */
  strict: boolean
  /** For messages: which key named the file. */
  what: string
  /** Which source the file is (in the error's details, so a status can say which source refused). */
  source: 'credential' | 'file'
}

/**
 * Read a secret from a file, refusing what could have been planted or read by others: a symlink, anything
 * but a regular file, (strict) a file owned by another user or with group/other permission bits, more than
 * SECRET_MAX_BYTES. Messages name the file and the reason, never a byte of its content. One trailing
 * newline (as `echo` writes it) is stripped.
 */
export async function readSecretFile(path: string, options: SecretFileOptions): Promise<string> {
  const unsafe = (reason: string, why: string): H2KError =>
    new H2KError('H2K_SECRET_UNSAFE', `${options.what}: ${path} ${why}; refusing to read a secret from it.`, {details: {path, reason, secret: options.what, source: options.source}})
  const unavailable = (reason: string, why: string, cause?: unknown): H2KError =>
    new H2KError('H2K_SECRET_UNAVAILABLE', `${options.what}: ${path} ${why}.`, {cause, details: {path, reason, secret: options.what, source: options.source}})

  const link = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' || error.code === 'ENOTDIR' ? unavailable('missing', 'does not exist') : unavailable('unreadable', `cannot be examined (${error.code ?? error.message})`, error)
  })
  if (link.isSymbolicLink()) throw unsafe('symlink', 'is a symbolic link')
  if (!link.isFile()) throw unsafe('not-regular', 'is not a regular file')
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ELOOP' ? unsafe('symlink', 'is a symbolic link') : unavailable('unreadable', `cannot be opened (${error.code ?? error.message})`, error)
  })
  try {
    const stat = await handle.stat()
    // The name may have been swapped between lstat and open: what we opened must be what we examined.
    if (stat.dev !== link.dev || stat.ino !== link.ino || !stat.isFile()) throw unsafe('replaced', 'changed while it was being opened')
    if (options.strict) {
      if (!ownedByUsOrRoot(stat)) throw unsafe('owner', `is owned by uid ${stat.uid}, not by this user (uid ${process.geteuid?.()}) or root`)
      if ((stat.mode & 0o077) !== 0) throw unsafe('mode', `has mode 0${(stat.mode & 0o777).toString(8)}: group or others may access it (use 0600 or 0400)`)
    }
    if (stat.size > SECRET_MAX_BYTES) throw unsafe('size', `is larger than ${SECRET_MAX_BYTES / 1024} KiB`)
    const buffer = Buffer.alloc(SECRET_MAX_BYTES + 1)
    let length = 0
    for (;;) {
      const {bytesRead} = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > SECRET_MAX_BYTES) throw unsafe('size', `is larger than ${SECRET_MAX_BYTES / 1024} KiB`)
    }
    const value = buffer.subarray(0, length).toString('utf8').replace(/\r?\n$/, '')
    buffer.fill(0)
    if (value === '') throw unavailable('empty', 'is empty')
    return value
  } finally {
    await handle.close()
  }
}
