import {lstatSync, readlinkSync, realpathSync} from 'node:fs'
import {isAbsolute, resolve} from 'node:path'

import type {SandboxView} from '@hyper2kvm/plugin-api'

/** One bind mount: the host path (real, no symlinks) and where it appears inside the sandbox. */
export interface Bind {
  source: string
  dest: string
  writable: boolean
}

/** A view with every path resolved: what bwrap is told to mount. */
export interface ResolvedView {
  binds: readonly Bind[]
  devices: readonly string[]
  tmpDir?: string
}

/** How the host's top-level library and binary directories appear: merged-/usr symlinks, or real directories. */
export type SystemDirs = ReadonlyArray<{path: string; symlink?: string}>

/** The top-level directories a dynamically linked qemu may load from; absent ones are skipped. */
const SYSTEM_DIRS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']

/** Files of /etc a qemu needs: only the dynamic loader's cache (the loader falls back to its default paths without it). */
const ETC_FILES = ['/etc/ld.so.cache']

/** The private /tmp is small: qemu tools write nothing there (the boot test's snapshot overlay goes to tmpDir). */
const TMP_BYTES = 64 * 1024 * 1024

/** The host's system directories as they are (a merged-/usr system has symlinks, an older one directories). */
export function hostSystemDirs(): SystemDirs {
  const dirs: Array<{path: string; symlink?: string}> = []
  for (const path of SYSTEM_DIRS) {
    try {
      const info = lstatSync(path)
      if (info.isSymbolicLink()) dirs.push({path, symlink: readlinkSync(path)})
      else if (info.isDirectory()) dirs.push({path})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }
  return dirs
}

/**
 * Resolve a view: each path is bound from its real location, at the path the tool will be given (json
 * specs name it so) and, when that differs, at its real path too. A path that does not exist is left out
 * (the tool then fails to open it, as it would have outside). Parents are mounted before their children.
 */
export function resolveView(view: SandboxView): ResolvedView {
  const binds = new Map<string, Bind>()
  const add = (path: string, writable: boolean): void => {
    const given = isAbsolute(path) ? path : resolve(path)
    let source: string
    try {
      source = realpathSync(given)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    for (const dest of new Set([given, source])) {
      // /usr is in every sandbox, read-only; a read-only bind inside it could not be mounted (and is not needed).
      if (!writable && dest.startsWith('/usr/')) continue
      const earlier = binds.get(dest)
      // The same path asked for read-only and read-write is writable: the caller writes it.
      binds.set(dest, {dest, source, writable: writable || (earlier?.writable ?? false)})
    }
  }
  for (const path of view.readWrite) add(path, true)
  for (const path of view.readOnly) add(path, false)
  const ordered = [...binds.values()].sort((a, b) => a.dest.split('/').length - b.dest.split('/').length || a.dest.localeCompare(b.dest))
  return {binds: ordered, devices: [...(view.devices ?? [])], tmpDir: view.tmpDir}
}

export interface BwrapCommand {
  /** The bwrap executable (absolute). */
  bwrap: string
  /** The program to run inside and its arguments. */
  argv: readonly string[]
  /** A directory (under /usr) searched first for the program: where the caller found it. */
  path?: string
  view: ResolvedView
  system: SystemDirs
  /** Working directory inside the sandbox: must be visible, else `/`. */
  cwd?: string
  /** Environment inside the sandbox, besides PATH and TMPDIR (the caller's environment is not passed in). */
  env?: Readonly<Record<string, string>>
}

/**
 * The bwrap argv: a fresh mount namespace whose root is an empty read-only tmpfs with /usr (and the
 * loader's cache) read-only, a minimal /dev, a /proc of its own pid namespace, a private /tmp and the
 * view's binds; every other namespace unshared (no network), all capabilities dropped, its own session
 * (no terminal injection), and killed when we die.
 */
export function bwrapArgv(command: BwrapCommand): string[] {
  const args = [command.bwrap, '--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--ro-bind', '/usr', '/usr']
  for (const dir of command.system) {
    if (dir.symlink !== undefined) args.push('--symlink', dir.symlink, dir.path)
    else args.push('--ro-bind', dir.path, dir.path)
  }
  for (const file of ETC_FILES) args.push('--ro-bind-try', file, file)
  args.push('--dev', '/dev')
  for (const device of command.view.devices) args.push('--dev-bind', device, device)
  args.push('--proc', '/proc', '--size', String(TMP_BYTES), '--tmpfs', '/tmp')
  for (const bind of command.view.binds) args.push(bind.writable ? '--bind' : '--ro-bind', bind.source, bind.dest)
  args.push('--remount-ro', '/')
  const visible = command.cwd !== undefined && command.view.binds.some((b) => b.dest === command.cwd)
  args.push('--chdir', visible ? command.cwd! : '/', '--clearenv', '--setenv', 'PATH', [...(command.path === undefined ? [] : [command.path]), '/usr/local/bin', '/usr/bin', '/bin'].join(':'), '--setenv', 'TMPDIR', command.view.tmpDir ?? '/tmp')
  for (const [name, value] of Object.entries(command.env ?? {})) args.push('--setenv', name, value)
  args.push('--', ...command.argv)
  return args
}
