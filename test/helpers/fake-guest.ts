import type {JobSettings, StageContext} from '@hyper2kvm/plugin-api'

import {FakeGuest as ExampleFakeGuest, type FakeJob, fakeJob} from '../../examples/plugin-example/test/fake-guest.js'

/**
 * The example plugin's in-memory guest (exists/readFile/writeFile follow symlinks, is-* do not) plus the
 * guestfish commands the Linux fixers use to walk and prune directories: `ls` (names in a directory, like the
 * appliance: not following a symlinked directory), `rm` (a file) and `mkdir-p`. Paths are planted with file/dir/symlink.
 */
export class FakeGuest extends ExampleFakeGuest {
  /** Every guestfish command the stage ran, in order, for tests that look at what was touched. */
  readonly calls: string[] = []

  plantFile(path: string, content: string): this {
    this.plantParents(path)
    this.nodes.set(path, {content, kind: 'file'})
    return this
  }

  plantSymlink(path: string, target: string): this {
    this.plantParents(path)
    this.nodes.set(path, {kind: 'symlink', target})
    return this
  }

  private plantParents(path: string): void {
    const parts = path.split('/').filter(Boolean)
    for (let i = 1; i < parts.length; i++) this.nodes.set(`/${parts.slice(0, i).join('/')}`, {kind: 'dir'})
  }

  override async call(command: string, ...args: string[]): Promise<string> {
    this.calls.push([command, ...args].join(' '))
    const path = args[0] ?? ''
    if (command === 'ls') {
      if (this.nodes.get(path)?.kind !== 'dir') throw new Error(`ls: ${path}: not a directory`)
      const prefix = `${path}/`
      return [...this.nodes.keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length)).sort().map((n) => `${n}\n`).join('')
    }
    if (command === 'mkdir-p') {
      this.plantParents(`${path}/x`)
      return ''
    }
    if (command === 'rm') {
      const node = this.nodes.get(path)
      if (node === undefined || node.kind === 'dir') throw new Error(`rm: ${path}: not a file`)
      this.nodes.delete(path)
      return ''
    }
    return super.call(command, ...args)
  }
}

/** A fixer's context on the fake guest: a Linux inspection, fixing on, and the job settings given (e.g. keepMacs). */
export function fakeFixerJob(guest: FakeGuest, job: Partial<JobSettings> & {keepMacs?: boolean} = {}): FakeJob {
  const base = fakeJob(guest)
  const ctx = Object.assign(Object.create(null) as object, base.ctx, {
    inspection: {firmware: 'bios', fstab: [], kernels: [], luks: false, lvm: false, mountpoints: {}, os: 'linux', raid: false, risks: []},
    job: {input: '/srv/exports/web01.vmdk', ...job, fix: {continueOnError: false, enabled: true, fstabMode: 'stabilize-all', grub: true, initramfs: true, ...job.fix}},
  }) as StageContext
  return {...base, ctx}
}
