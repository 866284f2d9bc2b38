import type {FileChange, GuestSession, JobWarning, StageContext} from '@hyper2kvm/plugin-api'

type GuestNode = {kind: 'dir'} | {kind: 'file'; content: string} | {kind: 'symlink'; target: string}

/**
 * An in-memory guest file system behind the GuestSession interface: enough for a fixer's unit test. Like
 * the real appliance, `exists`, `readFile` and `writeFile` follow symbolic links, and the `is-*` commands
 * do not.
 */
export class FakeGuest implements GuestSession {
  readonly nodes = new Map<string, GuestNode>([
    ['/', {kind: 'dir'}],
    ['/etc', {kind: 'dir'}],
  ])

  /** The path a symbolic link chain ends at (absolute targets only, like the links this test plants). */
  private follow(path: string): string {
    let current = path
    for (let hops = 0; hops < 8; hops++) {
      const node = this.nodes.get(current)
      if (node?.kind !== 'symlink') return current
      current = node.target
    }
    throw new Error(`too many levels of symbolic links: ${path}`)
  }

  file(path: string): string | undefined {
    const node = this.nodes.get(path)
    return node?.kind === 'file' ? node.content : undefined
  }

  async call(command: string, ...args: string[]): Promise<string> {
    const path = args[0] ?? ''
    const node = this.nodes.get(path)
    switch (command) {
      case 'is-dir':
        return String(node?.kind === 'dir')
      case 'is-file':
        return String(node?.kind === 'file')
      case 'is-symlink':
        return String(node?.kind === 'symlink')
      case 'filesize': {
        const target = this.nodes.get(this.follow(path))
        if (target?.kind !== 'file') throw new Error(`filesize: ${path}: not a file`)
        return `${Buffer.byteLength(target.content)}\n`
      }
      default:
        throw new Error(`the fake guest has no command ${command}`)
    }
  }

  async exists(path: string): Promise<boolean> {
    return this.nodes.has(this.follow(path))
  }

  async readFile(path: string): Promise<string | null> {
    const node = this.nodes.get(this.follow(path))
    return node?.kind === 'file' ? node.content : null
  }

  async writeFile(path: string, content: string): Promise<void> {
    this.nodes.set(this.follow(path), {content, kind: 'file'})
  }

  async sh(): Promise<string> {
    throw new Error('the fake guest runs no shell')
  }
}

export interface FakeJob {
  ctx: StageContext
  changes: FileChange[]
  warnings: JobWarning[]
}

/**
 * A StageContext holding what a fixer reads: the job's input, the loaded source, the inspection, the
 * guest and the stage's options; changes and warnings are collected for the test to look at. A stage that
 * reads anything else finds it undefined and fails the test loudly.
 */
export function fakeJob(guest: FakeGuest, settings: {input?: string; format?: string; os?: string; options?: Record<string, unknown>} = {}): FakeJob {
  const input = settings.input ?? '/srv/exports/web01.vmdk'
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
    inspection: {os: settings.os ?? 'linux'},
    job: {input},
    log: {debug() {}, info() {}, warn() {}},
    options: settings.options,
    report() {},
    signal: new AbortController().signal,
    source: {disks: [], format: settings.format ?? 'vmdk', input, name: 'web01'},
    warn: (code: string, message: string) => warnings.push({code, message}),
  }
  return {changes, ctx: context as unknown as StageContext, warnings}
}
