import {realpath, stat} from 'node:fs/promises'
import {isAbsolute, join, relative, sep} from 'node:path'

import {H2KError} from '../errors/h2k-error.js'

export interface ContainedPathOptions {
  /** What refers to the file, for messages: "extent", "parent disk", "OVF disk". */
  what: string
  /** The file that holds the reference, for messages. */
  referrer: string
}

/** `path` relative to `root` when it is `root` itself ('') or lies below it; undefined when it is elsewhere. Lexical: resolve symlinks first where they matter. */
export function relativeInside(root: string, path: string): string | undefined {
  const rel = relative(root, path)
  return rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) ? undefined : rel
}

function unsafeName(name: string, options: ContainedPathOptions): (why: string) => H2KError {
  return (why) => new H2KError('H2K_UNSAFE_PATH', `${options.referrer} names its ${options.what} "${name}", ${why}; refusing to open it.`, {details: {name, referrer: options.referrer}})
}

/** The checks on the name alone: no empty name, URL, absolute path or "..". */
function refuseUnsafeName(name: string, options: ContainedPathOptions): void {
  const unsafe = unsafeName(name, options)
  if (name.length === 0 || name.includes('\0')) throw unsafe('an empty or invalid name')
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(name)) throw unsafe('a URL')
  if (isAbsolute(name) || /^[a-z]:[\\/]/i.test(name) || name.startsWith('\\')) throw unsafe('an absolute path')
  if (name.split(/[\\/]/).includes('..')) throw unsafe('a path with ".."')
}

/**
 * The same checks for a name we will never open but qemu could (the extents of an embedded VMDK
 * descriptor): the name must be safe, and if it exists it must not lead out of `baseDir` through a symlink.
 * A missing file is fine here.
 */
export async function refuseEscapingName(baseDir: string, name: string, options: ContainedPathOptions): Promise<void> {
  refuseUnsafeName(name, options)
  const root = await realpath(baseDir)
  const real = await realpath(join(root, name)).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    // A name no file can have, or a symlink loop: not a file we could vouch for (found by fuzzing: it escaped as a raw ENAMETOOLONG).
    if (code === 'ENAMETOOLONG' || code === 'ELOOP') throw unsafeName(name, options)(code === 'ELOOP' ? 'a symlink loop' : 'a name too long for a file')
    throw error
  })
  if (real !== undefined && !relativeInside(root, real)) throw unsafeName(name, options)(`a symlink that leaves ${root}`)
}

/**
 * Resolve a file name that an untrusted descriptor uses to refer to another file. Only plain relative
 * names inside `baseDir` are accepted: no absolute paths, no "..", no URLs, no symlink that leaves the
 * directory. The file must exist and be a regular file. Returns its real path.
 */
export async function resolveContainedFile(baseDir: string, name: string, options: ContainedPathOptions): Promise<string> {
  const details = {name, referrer: options.referrer}
  const unsafe = unsafeName(name, options)
  refuseUnsafeName(name, options)
  const root = await realpath(baseDir)
  const candidate = join(root, name)
  let real: string
  try {
    real = await realpath(candidate)
  } catch {
    throw new H2KError('H2K_EXTENT_MISSING', `${options.referrer} names its ${options.what} "${name}", which does not exist in ${root}.`, {details})
  }
  if (!relativeInside(root, real)) throw unsafe(`a symlink that leaves ${root} (it points to ${real})`)
  const info = await stat(real)
  if (!info.isFile()) throw unsafe('something that is not a regular file')
  return real
}
