import {lstat} from 'node:fs/promises'
import {join} from 'node:path'

import type {ClaimGate} from './claim-gate.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import type {IntakeItem} from './intake-items.js'

/** What the tracker knows of one file of the inbox. */
export interface Tracked {
  size: number
  mtimeMs: number
  checks: number
  firstSeen: number
  lastCheck: number
  warned: boolean
}

/** The settings the tracker reads on every check (they may change on a reload). */
export interface StabilitySettings {
  inbox: string
  intervalMs: number
  /** file_stable_checks: consecutive identical size+mtime checks. */
  checks: number
  /** file_stable_timeout, seconds. */
  timeoutS: number
}

/**
 * When a dropped file (and the files its item names) may be claimed: file_stable_checks identical
 * size+mtime checks at least one interval apart, then the gate (no open writer, complete by its format).
 */
export class StabilityTracker {
  private readonly tracked = new Map<string, Tracked>()

  constructor(
    private readonly settings: () => StabilitySettings,
    private readonly gate: ClaimGate,
    private readonly log: DaemonLogFn,
  ) {}

  /** Files seen and not claimed yet. */
  get size(): number {
    return this.tracked.size
  }

  forget(rel: string): void {
    this.tracked.delete(rel)
  }

  /** Drop what is no longer in the inbox nor named by an item. */
  retain(relevant: ReadonlySet<string>): void {
    for (const rel of this.tracked.keys()) if (!relevant.has(rel)) this.tracked.delete(rel)
  }

  /** One check of one file (relative to the inbox). Returns undefined when the file does not exist (any more). */
  async observe(rel: string): Promise<Tracked | undefined> {
    const {inbox, intervalMs, timeoutS} = this.settings()
    let info
    try {
      // lstat: a dropped symlink is observed as itself (and refused at intake), its target never looked at.
      info = await lstat(join(inbox, rel))
    } catch {
      this.tracked.delete(rel)
      return undefined
    }
    if (!info.isFile() && !info.isSymbolicLink()) return undefined
    const now = Date.now()
    const seen = this.tracked.get(rel)
    if (!seen) {
      const fresh = {checks: 1, firstSeen: now, lastCheck: now, mtimeMs: info.mtimeMs, size: info.size, warned: false}
      this.tracked.set(rel, fresh)
      this.log('debug', 'file:seen', {file: rel, size: info.size})
      return fresh
    }
    if (now - seen.lastCheck < intervalMs * 0.9) return seen
    seen.lastCheck = now
    if (seen.size === info.size && seen.mtimeMs === info.mtimeMs) {
      seen.checks++
    } else {
      seen.size = info.size
      seen.mtimeMs = info.mtimeMs
      seen.checks = 1
      if (!seen.warned && now - seen.firstSeen > timeoutS * 1000) {
        seen.warned = true
        this.log('warn', 'file:still-growing', {file: rel, size: info.size}, `still changing after ${timeoutS} s; kept pending and re-checked`)
      }
    }
    return seen
  }

  /**
   * Whether an item can be claimed: its files all stable, none held open for writing or incomplete by its
   * format (the gate); a file it names that has not arrived holds it back until file_stable_timeout (then
   * it is claimed and fails with a clear error).
   */
  async ready(item: IntakeItem, main: Tracked): Promise<boolean> {
    const {checks, timeoutS} = this.settings()
    let ok = main.checks >= checks
    const missing: string[] = []
    for (const rel of item.required) {
      const t = await this.observe(rel)
      if (!t) missing.push(rel)
      else if (t.checks < checks) ok = false
    }
    for (const rel of item.optional) {
      const t = await this.observe(rel)
      if (t && t.checks < checks) ok = false
    }
    const present = [item.main, ...item.required, ...item.optional].filter((rel) => !missing.includes(rel))
    if (!ok || missing.length === 0) return ok && this.gate.admit(present, main.firstSeen)
    if (Date.now() - main.firstSeen > timeoutS * 1000) return this.gate.admit(present, main.firstSeen)
    if (!main.warned) {
      main.warned = true
      this.log('info', 'file:waiting', {file: item.main, missing: missing.join(',')}, 'waiting for the files it names')
    }
    return false
  }
}
