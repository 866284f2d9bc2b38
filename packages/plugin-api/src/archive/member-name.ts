import {H2KError} from '../errors/h2k-error.js'

export function unsafeMember(name: string, why: string, archive: string): H2KError {
  return new H2KError('H2K_UNSAFE_ARCHIVE', `${archive}: member "${name}" ${why}; refusing the archive.`, {details: {archive, member: name}})
}

/**
 * The canonical form of an archive member name, or an H2K_UNSAFE_ARCHIVE error. Names that could land
 * outside a directory if anyone ever extracted them are refused outright, even though we never extract:
 * an archive carrying one was not made by an honest exporter. "./" and empty segments are dropped, so
 * "./disk.vmdk" and "disk.vmdk" are the same member (and a duplicate). Returns "" for the archive root.
 */
export function canonicalMemberName(name: string, archive: string): string {
  if (name.includes('\0')) throw unsafeMember(name, 'has a NUL byte in its name', archive)
  if (name.startsWith('/') || name.startsWith('\\') || /^[a-z]:/i.test(name)) throw unsafeMember(name, 'has an absolute name', archive)
  // Backslashes count as separators too: a Windows tool extracting "..\\x" would climb out.
  const segments = name.split(/[\\/]/)
  if (segments.includes('..')) throw unsafeMember(name, 'has a ".." segment in its name', archive)
  return segments.filter((segment) => segment !== '' && segment !== '.').join('/')
}
