import {closeSync, constants, lstatSync, mkdirSync, openSync, realpathSync} from 'node:fs'
import {mkdir, rename} from 'node:fs/promises'
import {basename, dirname, join, sep} from 'node:path'

import {relativeInside} from '@hyper2kvm/plugin-api/host'
import {O_DIR_NOFOLLOW, throughFd} from './bookkeeping.js'

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code

/**
 * Why a file that travels with an item (a companion, a job input), named relative to the inbox, may not be
 * moved or read — or undefined when it may (or has not arrived yet). Checked with lstat, component by
 * component, before anything moves: hidden components (the watch layout's bookkeeping directories are
 * hidden directories of the inbox) and symlinks anywhere on the way are refused; the file itself must be a
 * regular file, and its real path inside the inbox. The reason never says where a symlink points.
 */
export function unsafeInboxPath(inbox: string, rel: string): string | undefined {
  const parts = rel.split(sep)
  if (parts.some((p) => p.startsWith('.'))) return 'is hidden or in a hidden directory (the daemon keeps its own files there)'
  let current = inbox
  for (const [index, part] of parts.entries()) {
    current = join(current, part)
    let info
    try {
      info = lstatSync(current)
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined
      return `cannot be checked (${errno(error) ?? 'error'})`
    }
    const last = index === parts.length - 1
    if (info.isSymbolicLink()) return last ? 'is a symbolic link' : `goes through a symbolic link (${parts.slice(0, index + 1).join('/')})`
    if (!last && !info.isDirectory()) return `goes through ${parts.slice(0, index + 1).join('/')}, which is not a directory`
    if (last && !info.isFile()) return 'is not a regular file'
  }
  try {
    if (relativeInside(realpathSync(inbox), realpathSync(join(inbox, rel))) === undefined) return 'resolves outside the drop directory'
  } catch (error) {
    if (errno(error) !== 'ENOENT') return `cannot be resolved (${errno(error) ?? 'error'})`
  }
  return undefined
}

/** Whether a top-level name of the inbox is a regular file by lstat (never opened, never followed). */
export function droppedFileType(inbox: string, name: string): 'file' | 'symlink' | 'other' | 'gone' {
  try {
    const info = lstatSync(join(inbox, name))
    return info.isFile() ? 'file' : info.isSymbolicLink() ? 'symlink' : 'other'
  } catch {
    return 'gone'
  }
}

/**
 * Open `relDir` (relative to the inbox) one component at a time with O_NOFOLLOW, so that no symlink on
 * the way — even one swapped in after the checks — is followed. With `create`, missing directories are
 * made (mkdir never follows a symlink in its place). The caller closes the descriptor.
 */
function openInboxDir(inbox: string, relDir: string, create: boolean): number {
  let fd = openSync(inbox, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    for (const part of relDir === '.' || relDir === '' ? [] : relDir.split(sep)) {
      const path = throughFd(fd, part)
      if (create) {
        try {
          mkdirSync(path, {mode: 0o750})
        } catch (error) {
          if (errno(error) !== 'EEXIST') throw error
        }
      }
      const next = openSync(path, O_DIR_NOFOLLOW)
      closeSync(fd)
      fd = next
    }
    return fd
  } catch (error) {
    closeSync(fd)
    throw error
  }
}

/** Move `rel` out of the inbox to `to` (a path the caller made safe): the source's directories are never followed through a symlink. */
export async function moveOutOfInbox(inbox: string, rel: string, to: string): Promise<void> {
  await mkdir(dirname(to), {recursive: true})
  const fd = openInboxDir(inbox, dirname(rel), false)
  try {
    await rename(throughFd(fd, basename(rel)), to)
  } finally {
    closeSync(fd)
  }
}

/** Put `from` back into the inbox as `rel` unless a file is there already; directories on the way are never followed. */
export async function moveIntoInbox(from: string, inbox: string, rel: string): Promise<void> {
  const fd = openInboxDir(inbox, dirname(rel), true)
  try {
    const to = throughFd(fd, basename(rel))
    try {
      lstatSync(to)
      return
    } catch (error) {
      if (errno(error) !== 'ENOENT') throw error
    }
    await rename(from, to)
  } finally {
    closeSync(fd)
  }
}
