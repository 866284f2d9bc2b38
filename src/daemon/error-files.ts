import {lstat, readdir, readFile, rmdir, stat} from 'node:fs/promises'
import {basename, dirname, isAbsolute, join, normalize, resolve, sep} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import type {Layout} from './layout.js'

const SUFFIX = '.error.json'

/** The record the daemon writes for a failed item (`<file>.error.json`); every field is optional for old or hand-written files. */
export interface ErrorRecord {
  filename?: string
  filepath?: string
  original_path?: string
  file_size_mb?: number
  timestamp?: string
  job_id?: string
  error?: string
  error_code?: string
  exit_code?: number
  permanent?: boolean
  phase?: string | null
  stage?: string | null
  suggestion?: string | null
  suggestions?: string[]
  details?: Record<string, unknown>
  system_info?: Record<string, unknown>
  exception_traceback?: string | null
  retry_info?: {retry_count?: number; max_retries?: number; next_retry_at?: string | null; attempts?: number; retry_enabled?: boolean; retried?: boolean; reason_not_retried?: string | null}
  /** The item's files relative to the error file's directory, main file first (absent in old files: [filename]). */
  files?: string[]
  layout?: string
  [key: string]: unknown
}

/** One error file found in a layout, with what the errors commands need to show, retry or purge it. */
export interface ErrorFile {
  /** Absolute path of `<file>.error.json`. */
  path: string
  /** Its directory: the failed files sit beside it. */
  dir: string
  /** The failed item's (main) file name. */
  filename: string
  /** The item's files relative to `dir`, main file first; names that would leave `dir` are dropped. */
  files: string[]
  /** When it failed: the record's timestamp, or the error file's mtime when that is missing or unreadable. */
  failedAt: Date
  /** The parsed record; undefined when the file is not a JSON object. */
  record: ErrorRecord | undefined
  /** Why the record could not be read. */
  unreadable?: string
}

/** A relative name that stays inside its directory, normalised; undefined for anything else. */
function inside(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '' || name.includes('\0') || isAbsolute(name)) return undefined
  const clean = normalize(name)
  return clean === '.' || clean === '..' || clean.startsWith(`..${sep}`) ? undefined : clean
}

const gone = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === 'ENOENT'

/** One error file, or undefined when it vanished since the directory was read (retried or purged meanwhile). */
async function readOne(path: string): Promise<ErrorFile | undefined> {
  const dir = join(path, '..')
  const fallbackName = basename(path).slice(0, -SUFFIX.length)
  let record: ErrorRecord | undefined
  let unreadable: string | undefined
  let mtime: Date
  try {
    mtime = (await stat(path)).mtime
  } catch (error) {
    if (gone(error)) return undefined
    throw error
  }
  try {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'))
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) record = value as ErrorRecord
    else unreadable = 'not a JSON object'
  } catch (error) {
    if (gone(error)) return undefined
    unreadable = error instanceof Error ? error.message : String(error)
  }
  const filename = inside(record?.filename) ?? fallbackName
  const listed = Array.isArray(record?.files) ? record.files.map(inside).filter((n): n is string => n !== undefined) : []
  const files = listed.length > 0 ? [...new Set(listed)] : [filename]
  const stamp = typeof record?.timestamp === 'string' ? Date.parse(record.timestamp) : Number.NaN
  const failedAt = Number.isFinite(stamp) ? new Date(stamp) : mtime
  return {dir, failedAt, filename, files, path, record, ...(unreadable === undefined ? {} : {unreadable})}
}

async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (error) {
    if (gone(error)) return []
    throw error
  }
}

/** A claim's own directory (`<claim-id>/`), used when a name it settles with is already taken in the failed directory. */
const CLAIM_DIR = /^[0-9a-f]{8}$/

/**
 * The directories that hold error files: the error roots (for dated layouts their `<YYYY-MM-DD>/`
 * subdirectories), and in each the `<claim-id>/` directories of failures whose names were taken.
 */
async function errorDirs(layout: Layout): Promise<string[]> {
  const bases: string[] = []
  for (const root of layout.errorRoots) {
    // The daemon refuses a symlink in place of its error directory; the errors commands do not follow one either.
    const info = await lstat(root).catch(() => undefined)
    if (info?.isSymbolicLink()) {
      throw new H2KError('H2K_UNSAFE_PATH', `${root} is a symbolic link, not the daemon's error directory; refusing to follow it.`, {
        details: {dir: root},
        suggestions: [`Remove ${root}; the daemon recreates it (see \`hyper2kvm ctl status\` warnings).`],
      })
    }
    if (!layout.datedErrors) {
      bases.push(root)
      continue
    }
    for (const name of (await namesIn(root)).sort()) if (/^\d{4}-\d{2}-\d{2}$/.test(name)) bases.push(join(root, name))
  }
  const dirs: string[] = []
  for (const base of bases) {
    dirs.push(base)
    for (const name of (await namesIn(base)).sort()) if (CLAIM_DIR.test(name)) dirs.push(join(base, name))
  }
  return dirs
}

/** Every error file of the layout, newest first. */
export async function readErrorFiles(layout: Layout): Promise<ErrorFile[]> {
  const found: ErrorFile[] = []
  for (const dir of await errorDirs(layout)) {
    for (const name of await namesIn(dir)) {
      if (!name.endsWith(SUFFIX) || name.length === SUFFIX.length) continue
      const entry = await readOne(join(dir, name))
      if (entry) found.push(entry)
    }
  }
  return found.sort((a, b) => b.failedAt.getTime() - a.failedAt.getTime() || a.path.localeCompare(b.path))
}

/**
 * The error files a user means by `query`: a failed file's name (`web01.vmdk`), its error file's name
 * (`web01.vmdk.error.json`), or a path to either. Newest first; the same name can have failed on several days.
 */
export async function findErrorFiles(layout: Layout, query: string): Promise<ErrorFile[]> {
  const all = await readErrorFiles(layout)
  const asPath = resolve(query)
  const byPath = all.filter((e) => e.path === asPath || e.files.some((f) => join(e.dir, f) === asPath))
  if (byPath.length > 0) return byPath
  const name = basename(query)
  const wanted = name.endsWith(SUFFIX) ? name : `${name}${SUFFIX}`
  return all.filter((e) => basename(e.path) === wanted || e.filename === name)
}

/** The newest error file for `query`, or H2K_INPUT_NOT_FOUND saying where it looked. */
export async function findErrorFile(layout: Layout, query: string): Promise<{entry: ErrorFile; others: ErrorFile[]}> {
  const [entry, ...others] = await findErrorFiles(layout, query)
  if (entry === undefined) {
    const where = layout.datedErrors ? layout.errorRoots.map((r) => join(r, '<date>')).join(', ') : layout.errorRoots.join(', ')
    throw new H2KError('H2K_INPUT_NOT_FOUND', `No error file for ${query} in ${where} (${layout.kind} layout).`, {
      details: {errorRoots: layout.errorRoots, query},
      suggestions: ['`hyper2kvm errors list` shows the failed files.', 'Pass the --config the daemon runs with (or its --watch-dir) if this is another layout.'],
    })
  }
  return {entry, others}
}

/** An error file as the errors commands print it with --json: the record, plus where it is and what belongs to it. */
export function errorFileJson(entry: ErrorFile): Record<string, unknown> {
  return {
    ...entry.record,
    filename: entry.filename,
    error_file: entry.path,
    failed_at: entry.failedAt.toISOString(),
    files: entry.files,
    ...(entry.unreadable === undefined ? {} : {unreadable: entry.unreadable}),
  }
}

/**
 * After an item's files left its error directory (retried or purged): remove the directories left empty,
 * from the files' own subdirectories up to a dated `failed/<date>/`. The error roots themselves stay.
 */
export async function removeEmptyDirs(layout: Layout, entry: ErrorFile): Promise<string[]> {
  const keep = new Set(layout.errorRoots.map((r) => resolve(r)))
  const candidates = new Set<string>()
  for (const file of entry.files) {
    for (let dir = dirname(join(entry.dir, file)); dir.startsWith(entry.dir) && !keep.has(dir); dir = dirname(dir)) candidates.add(dir)
  }
  const removed: string[] = []
  for (const dir of [...candidates].sort((a, b) => b.length - a.length)) {
    try {
      await rmdir(dir)
      removed.push(dir)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw error
    }
  }
  return removed
}
