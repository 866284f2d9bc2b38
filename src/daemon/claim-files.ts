import {existsSync} from 'node:fs'
import {mkdir, readFile, readdir, rename, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {writeFileAtomic} from '../output/commit-outputs.js'
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
  await writeFileAtomic(join(dir, RECORD), `${JSON.stringify(record, null, 2)}\n`)
}

async function move(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), {recursive: true})
  await rename(from, to)
}

/**
 * Claim an item by atomic renames: the record first, then the companions, the main file last. When the
 * main file is gone (taken by someone else, deleted) the claim is undone and false is returned.
 */
export async function claimFiles(inbox: string, dir: string, record: ClaimRecord): Promise<boolean> {
  await mkdir(dir, {recursive: true})
  await writeClaim(dir, record)
  for (const rel of record.files.slice(1)) {
    if (existsSync(join(inbox, rel))) await move(join(inbox, rel), join(dir, rel))
  }
  try {
    await move(join(inbox, record.main), join(dir, record.main))
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
    if (existsSync(join(dir, rel)) && !existsSync(join(inbox, rel))) await move(join(dir, rel), join(inbox, rel))
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
 * `dated/<id>/`. Chosen once and recorded in the claim so a resumed settle keeps it.
 */
export async function settleTarget(dir: string, record: ClaimRecord, dated: string): Promise<string> {
  if (record.target) return record.target
  const clash = record.files.some((rel) => existsSync(join(dated, rel)))
  const target = clash ? join(dated, record.id) : dated
  await writeClaim(dir, {...record, target})
  return target
}

/** Move the claim's files to `target` (or delete them when target is undefined), then remove the claim directory. */
export async function settleFiles(dir: string, record: ClaimRecord, target: string | undefined): Promise<void> {
  for (const rel of record.files) {
    const from = join(dir, rel)
    if (!existsSync(from)) continue
    if (target === undefined) await rm(from, {force: true})
    else await move(from, join(target, rel))
  }
  await rm(dir, {force: true, recursive: true})
}
