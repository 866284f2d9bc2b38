import type {GuestSession} from '@hyper2kvm/plugin-api'

import {lines} from './guest-facts.js'

/**
 * Small questions to the guest that never trust it: symbolic links are seen as links (the `is-*` commands
 * do not follow them unless asked), reads are bounded, and nothing here runs the guest's programs.
 */

export async function isTrue(session: GuestSession, command: string, path: string, ...options: string[]): Promise<boolean> {
  return (await session.call(command, path, ...options)).trim() === 'true'
}

export const isSymlink = (session: GuestSession, path: string): Promise<boolean> => isTrue(session, 'is-symlink', path)

/** A directory (a symbolic link to one counts only with `follow`). */
export const isDir = (session: GuestSession, path: string, follow = false): Promise<boolean> => (follow ? isTrue(session, 'is-dir', path, 'followsymlinks:true') : isTrue(session, 'is-dir', path))

/** The names in a directory (following a link to it), or none when it is not one. */
export async function listDir(session: GuestSession, dir: string): Promise<string[]> {
  if (!(await isDir(session, dir, true))) return []
  return lines(await session.call('ls', dir))
}

/** Paths matching a glob(3) pattern inside the guest (the appliance expands it; directories end in '/'). */
export async function globPaths(session: GuestSession, pattern: string): Promise<string[]> {
  return lines(await session.call('glob-expand', pattern)).filter((p) => !p.endsWith('/'))
}

export type BoundedRead = {state: 'absent'} | {state: 'text'; text: string} | {state: 'refused'; why: string}

/**
 * A guest file's text when it is a regular file (not a link) of at most `maxBytes`; otherwise why not, in
 * words that never repeat the file's content or a link's target.
 */
export async function readBounded(session: GuestSession, path: string, maxBytes: number, options: {followLinks?: boolean} = {}): Promise<BoundedRead> {
  const link = await isSymlink(session, path)
  if (link && !options.followLinks) return {state: 'refused', why: 'is a symbolic link'}
  if (!(await isTrue(session, 'is-file', path, 'followsymlinks:true'))) {
    if (await session.exists(path)) return {state: 'refused', why: 'is not a regular file'}
    return link ? {state: 'refused', why: 'is a dangling symbolic link'} : {state: 'absent'}
  }
  const size = Number((await session.call('filesize', path)).trim())
  if (!Number.isFinite(size) || size > maxBytes) return {state: 'refused', why: `is larger than ${maxBytes} bytes`}
  const text = await session.readFile(path)
  return text === null ? {state: 'absent'} : {state: 'text', text}
}

/**
 * Directories we create or remove entries in must be real directories all the way down from /: a link
 * anywhere on the way would send the change to some other place in the guest. Returns the first
 * component that is not a plain directory, or undefined.
 */
export async function unsafeAncestor(session: GuestSession, dir: string): Promise<string | undefined> {
  let path = ''
  for (const part of dir.split('/').filter(Boolean)) {
    path += `/${part}`
    if ((await isSymlink(session, path)) || !(await isDir(session, path))) return path
  }
  return undefined
}
