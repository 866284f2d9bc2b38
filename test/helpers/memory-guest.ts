import {posix} from 'node:path'

import type {FileChange, FixSettings, GuestSession, Inspection, JobSettings, JobWarning, StageContext} from '@hyper2kvm/plugin-api'

type Node = {kind: 'dir'} | {kind: 'file'; content: string} | {kind: 'symlink'; target: string}

const globRegex = (component: string): RegExp =>
  new RegExp(`^${component.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`)

/**
 * An in-memory guest file system behind GuestSession, for fixers and inspection code that use the appliance's
 * file commands (no `sh`). It behaves as libguestfs does where it matters for safety: paths resolve symbolic
 * links in every component but the last as the kernel does; `exists`, `filesize`, `readFile`, `writeFile`,
 * `ls` and `mkdir-p` follow a final link; `is-file`/`is-dir` do not unless given `followsymlinks:true`; `rm`,
 * `mv` and `is-symlink` act on the link itself. `ln-sf` onto an existing link to a directory does not replace
 * the link (`ln -sf` dereferences it; in the real appliance an absolute target even resolves outside the
 * guest's tree): here the new link lands inside that directory, where a test sees it. Every round trip the
 * real session would make is logged in `calls`; every write with the path it finally landed on in `writes`.
 */
export class MemoryGuest implements GuestSession {
  readonly nodes = new Map<string, Node>([['/', {kind: 'dir'}]])
  /**
   * Every guestfish round trip a real session would make, in order, as `command path…`: `call()` as given,
   * `exists` as `exists <path>`, `readFile` as `exists <path>` then (when there) `download <path>`, `writeFile`
   * as `upload <path>` (src/guest/guestfish-session.ts).
   */
  readonly calls: string[] = []
  /** Paths written (after following links), in order. */
  readonly writes: string[] = []
  /** File system ids by device, as `vfs-uuid` / `vfs-label` report them. */
  readonly filesystems = new Map<string, {uuid?: string; label?: string}>()

  /** Requests made through GuestSession (each is one guestfish round trip on a real appliance). */
  get requests(): number {
    return this.calls.length
  }

  /** A directory and any missing parents (planting never replaces what is there). */
  plantDir(path: string): this {
    const parts = path.split('/').filter(Boolean)
    for (let i = 1; i <= parts.length; i++) {
      const at = `/${parts.slice(0, i).join('/')}`
      if (!this.nodes.has(at)) this.nodes.set(at, {kind: 'dir'})
    }
    return this
  }

  plantFile(path: string, content: string): this {
    this.plantDir(posix.dirname(path))
    this.nodes.set(path, {content, kind: 'file'})
    return this
  }

  /** A device holding a file system with these ids (what `vfs-uuid` and `vfs-label` answer for it). */
  plantFilesystem(device: string, ids: {uuid?: string; label?: string}): this {
    this.filesystems.set(device, ids)
    return this
  }

  plantSymlink(path: string, target: string): this {
    this.plantDir(posix.dirname(path))
    this.nodes.set(path, {kind: 'symlink', target})
    return this
  }

  file(path: string): string | undefined {
    const node = this.nodes.get(path)
    return node?.kind === 'file' ? node.content : undefined
  }

  link(path: string): string | undefined {
    const node = this.nodes.get(path)
    return node?.kind === 'symlink' ? node.target : undefined
  }

  /** The canonical path: links followed in every component, and in the last one too when `followLast`. */
  resolve(path: string, followLast: boolean, depth = 0): string {
    if (depth > 16) throw new Error(`too many levels of symbolic links: ${path}`)
    const parts = path.split('/').filter(Boolean)
    let current = '/'
    for (const [index, part] of parts.entries()) {
      const next = posix.join(current, part)
      const node = this.nodes.get(next)
      const last = index === parts.length - 1
      if (node?.kind === 'symlink' && (!last || followLast)) {
        current = this.resolve(posix.resolve(current, node.target), true, depth + 1)
      } else current = next
    }
    return current
  }

  private children(dir: string): string[] {
    const prefix = dir === '/' ? '/' : `${dir}/`
    return [...this.nodes.keys()].filter((p) => p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length)).sort()
  }

  private glob(pattern: string): string[] {
    let matches = ['']
    for (const component of pattern.split('/').filter(Boolean)) {
      const next: string[] = []
      for (const base of matches) {
        const dir = this.resolve(base || '/', true)
        if (this.nodes.get(dir)?.kind !== 'dir') continue
        if (!/[*?[]/.test(component)) {
          if (this.nodes.has(this.resolve(`${base}/${component}`, false))) next.push(`${base}/${component}`)
          continue
        }
        const regex = globRegex(component)
        for (const name of this.children(dir)) if (!name.startsWith('.') && regex.test(name)) next.push(`${base}/${name}`)
      }
      matches = next
    }
    return matches.map((m) => (this.nodes.get(this.resolve(m, true))?.kind === 'dir' ? `${m}/` : m)).sort()
  }

  async call(command: string, ...args: string[]): Promise<string> {
    this.calls.push([command, ...args].join(' '))
    const [path = '', second = ''] = args
    const follow = args.includes('followsymlinks:true')
    switch (command) {
      case 'is-dir':
        return String(this.nodes.get(this.resolve(path, follow))?.kind === 'dir')
      case 'is-file':
        return String(this.nodes.get(this.resolve(path, follow))?.kind === 'file')
      case 'is-symlink':
        return String(this.nodes.get(this.resolve(path, false))?.kind === 'symlink')
      case 'filesize': {
        const node = this.nodes.get(this.resolve(path, true))
        if (node?.kind !== 'file') throw new Error(`filesize: ${path}: not a file`)
        return `${Buffer.byteLength(node.content)}\n`
      }
      case 'ls': {
        const dir = this.resolve(path, true)
        if (this.nodes.get(dir)?.kind !== 'dir') throw new Error(`ls: ${path}: not a directory`)
        return this.children(dir).map((n) => `${n}\n`).join('')
      }
      case 'vfs-uuid':
      case 'vfs-label': {
        const ids = this.filesystems.get(path)
        if (!ids) throw new Error(`${command}: ${path}: no file system`)
        return `${(command === 'vfs-uuid' ? ids.uuid : ids.label) ?? ''}\n`
      }
      case 'list-filesystems':
        return [...this.filesystems.keys()].map((device) => `${device}: ext4\n`).join('')
      case 'blkid': {
        const ids = this.filesystems.get(path)
        if (!ids) throw new Error(`blkid: ${path}: no file system`)
        return `${ids.uuid ? `UUID: ${ids.uuid}\n` : ''}${ids.label ? `LABEL: ${ids.label}\n` : ''}`
      }
      case 'mkdir-p':
        this.mkdirP(path)
        return ''
      case 'realpath':
        return `${this.resolve(path, true)}\n`
      case 'glob-expand':
        return this.glob(path).map((p) => `${p}\n`).join('')
      case 'readlink': {
        const node = this.nodes.get(this.resolve(path, false))
        if (node?.kind !== 'symlink') throw new Error(`readlink: ${path}: not a link`)
        return `${node.target}\n`
      }
      case 'rm': {
        const at = this.resolve(path, false)
        const node = this.nodes.get(at)
        if (!node || node.kind === 'dir') throw new Error(`rm: ${path}: not a file or link`)
        this.nodes.delete(at)
        this.writes.push(at)
        return ''
      }
      case 'mv': {
        const from = this.resolve(path, false)
        const node = this.nodes.get(from)
        if (!node || node.kind === 'dir') throw new Error(`mv: ${path}: not a file or link`)
        const to = this.resolve(second, false)
        this.nodes.delete(from)
        this.nodes.set(to, node)
        this.writes.push(from, to)
        return ''
      }
      case 'ln-sf': {
        // ln -sf TARGET LINK: LINK naming a directory (or a link to one) puts the link inside it.
        let at = this.resolve(second, false)
        if (this.nodes.get(this.resolve(second, true))?.kind === 'dir') at = posix.join(this.resolve(second, true), posix.basename(path))
        if (this.nodes.get(posix.dirname(at))?.kind !== 'dir') throw new Error(`ln-sf: ${second}: no such directory`)
        this.nodes.set(at, {kind: 'symlink', target: path})
        this.writes.push(at)
        return ''
      }
      default:
        throw new Error(`the memory guest has no command ${command}`)
    }
  }

  /** mkdir -p: each missing component is created; a link to a directory is followed; anything else in the way fails. */
  private mkdirP(path: string): void {
    let at = '/'
    for (const part of path.split('/').filter(Boolean)) {
      const here = posix.join(at, part)
      if (!this.nodes.has(here)) {
        this.nodes.set(here, {kind: 'dir'})
        this.writes.push(here)
        at = here
        continue
      }
      at = this.resolve(here, true)
      if (this.nodes.get(at)?.kind !== 'dir') throw new Error(`mkdir-p: ${path}: not a directory`)
    }
  }

  async exists(path: string): Promise<boolean> {
    this.calls.push(`exists ${path}`)
    return this.nodes.has(this.resolve(path, true))
  }

  async readFile(path: string): Promise<string | null> {
    if (!(await this.exists(path))) return null
    this.calls.push(`download ${path}`)
    const node = this.nodes.get(this.resolve(path, true))
    if (node?.kind !== 'file') throw new Error(`download: ${path}: not a regular file`)
    return node.content
  }

  async writeFile(path: string, content: string): Promise<void> {
    this.calls.push(`upload ${path}`)
    const at = this.resolve(path, true)
    if (this.nodes.get(posix.dirname(at))?.kind !== 'dir') throw new Error(`write: ${path}: no such directory`)
    this.nodes.set(at, {content, kind: 'file'})
    this.writes.push(at)
  }

  /** A guest shell is the one thing a memory guest cannot run: the script is recorded (`sh …` in calls), then refused. */
  async sh(script: string): Promise<string> {
    this.calls.push(`sh ${script}`)
    throw new Error('the memory guest runs no shell')
  }
}

export interface MemoryJob {
  ctx: StageContext
  changes: FileChange[]
  warnings: JobWarning[]
}

/** What a fixer's job settings are here: any JobSettings, with `fix` given in part (fixing is on by default). */
export type MemoryJobSettings = Partial<Omit<JobSettings, 'fix'>> & {fix?: Partial<FixSettings>}

/**
 * A StageContext for a Linux guest's fixer (on this guest, in memory or a real appliance): the job's settings
 * (input /srv/exports/web01.vmdk, fixing on, and whatever is given, e.g. keepMacs or fix.keepVmwareTools), a
 * Linux inspection with the given facts, and the loaded source; changes and warnings collected for the test.
 * A stage that reads anything else finds it undefined and fails the test loudly.
 */
export function memoryJob(guest: GuestSession, settings: MemoryJobSettings & {inspection?: Partial<Inspection>} = {}): MemoryJob {
  const {fix, inspection, ...job} = settings
  const input = job.input ?? '/srv/exports/web01.vmdk'
  const changes: FileChange[] = []
  const warnings: JobWarning[] = []
  const context = {
    changes: {
      get all() {
        return changes
      },
      record: (change: FileChange) => changes.push({...change}),
    },
    guest: {isOpen: true, open: async () => guest},
    inspection: {firmware: 'bios', fstab: [], kernels: [], luks: false, lvm: false, mountpoints: {}, os: 'linux', raid: false, risks: [], ...inspection},
    job: {input, ...job, fix: {continueOnError: false, enabled: true, fstabMode: 'stabilize-all', grub: true, initramfs: true, ...fix}},
    log: {debug() {}, info() {}, warn() {}},
    options: {},
    report() {},
    signal: new AbortController().signal,
    source: {disks: [], format: 'vmdk', input, name: 'web01'},
    warn: (code: string, message: string) => warnings.push({code, message}),
  }
  return {changes, ctx: context as unknown as StageContext, warnings}
}
