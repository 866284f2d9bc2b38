import {lstat} from 'node:fs/promises'
import {dirname, isAbsolute, join, normalize} from 'node:path'

import type {Completeness} from './completeness/byte-source.js'
import {fileCompleteness, smallFileHead} from './completeness/file-completeness.js'
import {DESCRIPTOR_HEAD, flatExtentsCompleteness} from './completeness/flat-extents.js'
import {OpenFileTable} from './open-writers.js'

type Log = (level: 'info' | 'warn', event: string, fields: Record<string, unknown>, message: string) => void

export interface GateSettings {
  inbox: string
  /** Milliseconds between two intake ticks: one /proc walk serves every file checked within half of it. */
  intervalMs: number
  /** file_stable_timeout, seconds: how long a file may wait before the wait is logged as a warning. */
  timeoutS: number
}

interface Waiting {
  why: 'open-for-writing' | 'incomplete'
  warned: boolean
  touched: number
  /** For an incomplete file: its size/mtime stamp, and since when it has been incomplete with that stamp. */
  stamp?: string
  since?: number
}

/** Waits nobody asked about for this long are forgotten (their file went away). */
const FORGET_MS = 10 * 60 * 1000

/**
 * The last word before a claim, once size and mtime have been quiet for file_stable_checks checks: a file
 * that a process on this host still holds open for writing is not claimed (a stalled copy looks quiet),
 * nor one whose format says more is to come (completeness/). Such an item waits, logged once as waiting
 * (`file:open-for-writing`, `file:incomplete` with the reason) and once more as a warning after
 * file_stable_timeout, like a file that keeps growing; it is re-checked every tick and claimed when whole.
 * An incomplete file that nobody holds open and that has not changed at all for file_stable_timeout is
 * an abandoned upload, not a slow one: it is claimed then (`file:incomplete-claimed`), so the loader fails
 * it with a clear code and an error file instead of it waiting silently for ever.
 */
export class ClaimGate {
  private table?: {at: number; scan: Promise<OpenFileTable>}
  /** Completeness verdicts by path, valid while the file's identity, size and mtime stay the same. */
  private readonly verdicts = new Map<string, {stamp: string; result: Completeness}>()
  private readonly waiting = new Map<string, Waiting>()
  private procWarned = false

  constructor(
    private readonly settings: () => GateSettings,
    private readonly log: Log,
  ) {}

  /** Whether the files (relative to the inbox; the dropped one first) may be claimed now. */
  async admit(files: string[], firstSeen: number): Promise<boolean> {
    const {inbox, timeoutS} = this.settings()
    this.forgetStale()
    for (const rel of files) {
      const path = join(inbox, rel)
      const info = await lstat(path, {bigint: true}).catch(() => undefined) // gone: the claim notices
      if (!info?.isFile()) continue
      const writers = await (await this.openFiles()).writers(info.dev, info.ino)
      if (writers.length > 0) {
        this.wait(rel, 'open-for-writing', firstSeen, timeoutS, {file: rel, writers: writers.join(',')}, 'held open for writing by a process on this host; waiting until it closes it')
        return false
      }
      const stamp = `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}`
      let verdict = this.verdicts.get(path)
      if (verdict?.stamp !== stamp) {
        verdict = {result: await fileCompleteness(path, rel), stamp}
        this.verdicts.set(path, verdict)
      }
      if (!verdict.result.complete) {
        if (this.abandoned(rel, stamp, timeoutS, {file: rel, reason: verdict.result.reason})) continue
        this.wait(rel, 'incomplete', firstSeen, timeoutS, {file: rel, reason: verdict.result.reason}, 'its format says more is to come; waiting until it is whole')
        return false
      }
    }
    const sizes = new Map<string, number>()
    for (const rel of files) {
      const info = await lstat(join(inbox, rel)).catch(() => undefined) // gone: the claim notices
      if (info?.isFile()) sizes.set(normalize(rel), info.size)
    }
    for (const rel of sizes.keys()) {
      const head = await smallFileHead(join(inbox, rel), DESCRIPTOR_HEAD, 1024 * 1024)
      const result = head ? flatExtentsCompleteness(head, (name) => (isAbsolute(name) ? undefined : sizes.get(normalize(join(dirname(rel), name))))) : undefined
      if (result && !result.complete) {
        if (this.abandoned(rel, [...sizes.values()].join(':'), timeoutS, {file: rel, reason: result.reason})) continue
        this.wait(rel, 'incomplete', firstSeen, timeoutS, {file: rel, reason: result.reason}, 'the extents it names are not whole yet; waiting')
        return false
      }
    }
    for (const rel of files) {
      this.waiting.delete(rel)
      this.verdicts.delete(join(inbox, rel))
    }
    return true
  }

  /** One /proc walk per intake tick, shared by every file checked in it. */
  private openFiles(): Promise<OpenFileTable> {
    const now = Date.now()
    if (!this.table || now - this.table.at > this.settings().intervalMs / 2) {
      const scan = OpenFileTable.scan().catch((error: unknown) => {
        if (!this.procWarned) {
          this.procWarned = true
          this.log('warn', 'intake:no-proc', {}, `cannot walk /proc (${error instanceof Error ? error.message : String(error)}): writers on this host are not seen; rely on upload-then-rename`)
        }
        return OpenFileTable.empty
      })
      this.table = {at: now, scan}
    }
    return this.table.scan
  }

  /**
   * Whether an incomplete file has stayed exactly as it is (same `stamp`) for file_stable_timeout: then it
   * is claimed as it is (logged once), and the loader refuses it with its reason.
   */
  private abandoned(rel: string, stamp: string, timeoutS: number, fields: Record<string, unknown>): boolean {
    const now = Date.now()
    const entry = this.waiting.get(rel)
    if (entry?.why !== 'incomplete') return false // first sight: wait() starts the clock
    if (entry.stamp !== stamp) {
      entry.stamp = stamp
      entry.since = now
      return false
    }
    if (now - (entry.since ?? now) <= timeoutS * 1000) return false
    this.log('warn', 'file:incomplete-claimed', fields, `unchanged and incomplete for ${timeoutS} s: claimed as it is, so its loader reports what is missing`)
    return true
  }

  private wait(rel: string, why: Waiting['why'], firstSeen: number, timeoutS: number, fields: Record<string, unknown>, message: string): void {
    const now = Date.now()
    let entry = this.waiting.get(rel)
    if (entry?.why !== why) {
      entry = {touched: now, warned: false, why}
      this.waiting.set(rel, entry)
      this.log('info', `file:${why}`, fields, message)
    }
    entry.touched = now
    if (!entry.warned && now - firstSeen > timeoutS * 1000) {
      entry.warned = true
      this.log('warn', `file:still-${why}`, fields, `still waiting after ${timeoutS} s; kept pending and re-checked`)
    }
  }

  private forgetStale(): void {
    const now = Date.now()
    for (const [rel, entry] of this.waiting) {
      if (now - entry.touched > FORGET_MS) {
        this.waiting.delete(rel)
        this.verdicts.delete(join(this.settings().inbox, rel))
      }
    }
  }
}
