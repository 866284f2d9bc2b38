import {closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, statSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {relativeInside} from '@hyper2kvm/plugin-api/host'

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}

/** A directory held open: operations go through `/proc/self/fd/<fd>/…`, which the kernel resolves to this very directory. */
export interface HeldDir {
  fd: number
  dev: number
  ino: number
}

/** The path of `rel` inside a held directory, immune to its name being replaced (by a symlink, another directory). */
export const throughFd = (fd: number, rel = ''): string => join(`/proc/self/fd/${fd}`, rel)

export const O_DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

/**
 * The daemon's bookkeeping directories (watch: `.processing`, `.processed`, `.errors`, `.duplicates`;
 * workflow layouts: `processing`, `processed`, `failed`, `duplicates`). They keep their seed-compatible
 * names, so they live where droppers may be able to write: each is created 0750 if missing, opened with
 * O_DIRECTORY|O_NOFOLLOW and accepted only when it is a real directory owned by the daemon's user and not
 * writable by group or others. Every later rename, mkdir and write into it goes through the held file
 * descriptor, so replacing the name with a symlink afterwards changes nothing; a refused directory is never
 * followed, the problem is logged and shown by `ctl status` until someone fixes it.
 */
export class BookkeepingDirs {
  private readonly held = new Map<string, HeldDir>()
  private readonly problems = new Map<string, string>()
  /** Parents (drop directories) where others could rename the daemon's directories: advice, not a refusal. */
  private readonly advisories = new Map<string, string>()
  /** Replaced directories stay open: an operation in flight may still use their fd path. */
  private readonly retired: number[] = []
  private readonly uid = process.geteuid?.() ?? 0

  constructor(private readonly dirs: readonly string[]) {}

  /** Create, open and check every directory; returns the problems that are new since the last check (to log them once). */
  check(): Array<{dir: string; problem: string}> {
    const fresh: Array<{dir: string; problem: string}> = []
    for (const dir of this.dirs) {
      const problem = this.checkOne(dir)
      if (problem === undefined) {
        this.problems.delete(dir)
        continue
      }
      if (this.problems.get(dir) !== problem) fresh.push({dir, problem})
      this.problems.set(dir, problem)
      this.held.delete(dir)
    }
    return fresh
  }

  /**
   * The directories holding the bookkeeping ones that others may write without the sticky bit: there a
   * dropper can rename the daemon's directories (the next check then refuses them, but paths handed to
   * queued jobs were taken before). Returns the ones new since the last call, to log them once.
   */
  checkParents(): Array<{dir: string; advice: string}> {
    const fresh: Array<{dir: string; advice: string}> = []
    for (const parent of new Set(this.dirs.map((dir) => dirname(dir)))) {
      let mode: number
      try {
        mode = statSync(parent).mode
      } catch {
        continue // missing: the daemon creates it, or fails on it, elsewhere
      }
      const advice = (mode & 0o022) !== 0 && (mode & 0o1000) === 0 ? `is writable by group or others without the sticky bit (mode ${(mode & 0o7777).toString(8)}): they can rename the daemon's directories in it; chmod +t ${parent}` : undefined
      if (advice === undefined) {
        this.advisories.delete(parent)
        continue
      }
      if (this.advisories.get(parent) !== advice) fresh.push({advice, dir: parent})
      this.advisories.set(parent, advice)
    }
    return fresh
  }

  /** What `ctl status` shows: one line per refused directory. */
  warnings(): string[] {
    return [
      ...[...this.problems].map(([dir, problem]) => `${dir} ${problem}: refused, never followed; nothing is claimed or settled there until it is fixed`),
      ...[...this.advisories].map(([dir, advice]) => `${dir} ${advice}`),
    ]
  }

  /** Whether every bookkeeping directory is usable (new items are claimed only then). */
  healthy(): boolean {
    return this.problems.size === 0 && this.held.size === this.dirs.length
  }

  /**
   * The path to operate on for `real` (a bookkeeping directory or a path below one): through the held
   * descriptor. Throws H2K_UNSAFE_PATH when that directory is refused (or `real` is in none of them).
   */
  safe(real: string): string {
    for (const dir of this.dirs) {
      const rel = relativeInside(dir, real)
      if (rel === undefined) continue
      const held = this.held.get(dir)
      if (!held) {
        throw new H2KError('H2K_UNSAFE_PATH', `The daemon's directory ${dir} ${this.problems.get(dir) ?? 'is not open'}; refusing to use it.`, {
          details: {dir},
          suggestions: [`Remove ${dir} (a symlink or a directory the daemon's user does not own) and let the daemon create it, or create it owned by the daemon's user, mode 0750.`],
        })
      }
      return throughFd(held.fd, rel)
    }
    throw new H2KError('H2K_INTERNAL', `${real} is in none of the daemon's bookkeeping directories.`)
  }

  close(): void {
    for (const held of this.held.values()) closeSync(held.fd)
    for (const fd of this.retired.splice(0)) closeSync(fd)
    this.held.clear()
  }

  private checkOne(dir: string): string | undefined {
    let fd: number
    try {
      fd = this.open(dir)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR (or ELOOP): lstat tells which it was.
      if (code === 'ELOOP' || code === 'ENOTDIR') return isSymlink(dir) ? 'is a symbolic link' : 'is not a directory'
      return `cannot be opened (${code ?? (error as Error).message})`
    }
    const info = fstatSync(fd)
    const problem =
      info.uid !== this.uid ? `is owned by uid ${info.uid}, not by the daemon's user (uid ${this.uid})` : (info.mode & 0o022) !== 0 ? `is writable by group or others (mode ${(info.mode & 0o7777).toString(8)})` : undefined
    const before = this.held.get(dir)
    if (problem !== undefined || (before && before.dev === info.dev && before.ino === info.ino)) {
      closeSync(fd)
      return problem
    }
    if (before) this.retired.push(before.fd)
    this.held.set(dir, {dev: info.dev, fd, ino: info.ino})
    return undefined
  }

  /** Open a directory without following a symlink in its place; a missing one is created first (mkdir never follows one either). */
  private open(dir: string): number {
    try {
      lstatSync(dir)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      try {
        mkdirSync(dir, {mode: 0o750})
      } catch (mkdirError) {
        if ((mkdirError as NodeJS.ErrnoException).code !== 'EEXIST') throw mkdirError
      }
    }
    return openSync(dir, O_DIR_NOFOLLOW)
  }
}
