import {lstatSync} from 'node:fs'
import {mkdir, readFile, readdir, rename, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {writeNewFileAtomic} from '../fs/write-new-file.js'
import {moveIntoInbox, moveOutOfInbox} from './inbox-paths.js'
import type {ItemKind} from './intake-items.js'

/** `<processing>/<id>/.claim.json`: written before the first rename, so recovery knows what a claim holds. */
export interface ClaimRecord {
  id: string
  kind: ItemKind
  /** The dropped file, relative to the inbox (and to the claim directory). */
  main: string
  /** Every file of the claim, main first, relative paths. */
  files: string[]
  claimed_at: string
  /** An item refused before its claim (a symlink, a companion that may not travel): the error it fails with, so the file is never read to find it again. */
  refused?: {code: string; message: string; suggestions: readonly string[]; details: Record<string, unknown>}
  /** The dropped file's identity (file-identity.ts) as its intake claim row has it: recovery finds or re-creates the row by it. */
  identity?: string
  /** Set when the claim is being settled: where its files go (so a settle resumed after a crash goes to the same place). */
  target?: string
}

const RECORD = '.claim.json'

export const claimDir = (processing: string, id: string): string => join(processing, id)

export async function readClaim(dir: string): Promise<ClaimRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, RECORD), 'utf8')) as ClaimRecord
  } catch {
    return undefined
  }
}

export async function writeClaim(dir: string, record: ClaimRecord): Promise<void> {
  await writeNewFileAtomic(join(dir, RECORD), `${JSON.stringify(record, null, 2)}\n`)
}

/** Whether a name exists, by lstat: a symlink counts as itself (existsSync would follow it). */
function present(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}

async function move(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), {mode: 0o750, recursive: true})
  await rename(from, to)
}

/**
 * Claim an item by atomic renames: the record first, then the companions, the main file last. When the
 * main file is gone (taken by someone else, deleted) the claim is undone and false is returned. `dir` is
 * the claim directory as the bookkeeping descriptors reach it; the inbox side is walked without following
 * symlinks (inbox-paths.ts), so what moves is what was checked.
 */
export async function claimFiles(inbox: string, dir: string, record: ClaimRecord): Promise<boolean> {
  await mkdir(dirname(dir), {mode: 0o750, recursive: true})
  // Exclusive: on a processing/ shared by several nodes, a claim directory is never another's (EEXIST throws).
  await mkdir(dir, {mode: 0o750})
  await writeClaim(dir, record)
  for (const rel of record.files.slice(1)) {
    try {
      await moveOutOfInbox(inbox, rel, join(dir, rel))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }
  try {
    await moveOutOfInbox(inbox, record.main, join(dir, record.main))
    return true
  } catch (error) {
    await undoClaim(inbox, dir, record)
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}

/** Put what a claim holds back into the inbox and remove the claim directory. */
export async function undoClaim(inbox: string, dir: string, record: ClaimRecord): Promise<void> {
  for (const rel of record.files) {
    if (present(join(dir, rel))) await moveIntoInbox(join(dir, rel), inbox, rel)
  }
  await rm(dir, {force: true, recursive: true})
}

/** The relative paths of every file under a claim directory except its record (claims made before records existed). */
export async function listClaimFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {recursive: true, withFileTypes: true})
  return entries
    .filter((e) => e.isFile() || e.isSymbolicLink())
    .map((e) => join(e.parentPath ?? dir, e.name).slice(dir.length + 1))
    .filter((rel) => rel !== RECORD)
}

/**
 * Where a settled claim's files go: `dated/` when none of them would overwrite a file there, else
 * `dated/<id>/`. Chosen once and recorded in the claim so a resumed settle keeps it (as the real path;
 * `safe` maps it to the bookkeeping descriptor's path for every look).
 */
export async function settleTarget(dir: string, record: ClaimRecord, dated: string, safe: (real: string) => string): Promise<string> {
  if (record.target) return record.target
  const clash = record.files.some((rel) => present(safe(join(dated, rel))))
  const target = clash ? join(dated, record.id) : dated
  await writeClaim(dir, {...record, target})
  return target
}

/** Move the claim's files to `target` (or delete them when target is undefined), then remove the claim directory. */
export async function settleFiles(dir: string, record: ClaimRecord, target: string | undefined): Promise<void> {
  for (const rel of record.files) {
    const from = join(dir, rel)
    if (!present(from)) continue
    if (target === undefined) await rm(from, {force: true})
    else await move(from, join(target, rel))
  }
  await rm(dir, {force: true, recursive: true})
}
