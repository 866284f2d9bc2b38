import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {FixSettings} from '@hyper2kvm/plugin-api'

import {inspectVmwareTools} from '../../../plugins/linux/src/vmware-tools-facts.js'
import {vmwareToolsFixer} from '../../../plugins/linux/src/vmware-tools-fixer.js'
import {MemoryGuest, memoryJob} from '../../helpers/memory-guest.js'

// Each case is a folder vmware-tools-cases/<case>/ with
//   tree/      regular files of the guest, byte for byte (tree/etc/fstab is the guest's /etc/fstab)
//   guest.json {links: {path: target}, dirs: [paths], files: {path: text} (names git should not hold, e.g. with
//              control characters), fill: {path: {line, bytes}} (a large file made of one line repeated),
//              fix: FixSettings the job has (e.g. keepVmwareTools)}
//   expect.json what must happen: see Expect below
//   expected/  files whose content after the fixer must be exactly this
const CASES = join(dirname(fileURLToPath(import.meta.url)), 'vmware-tools-cases')

interface GuestSpec {
  links?: Record<string, string>
  dirs?: string[]
  files?: Record<string, string>
  fill?: Record<string, {line: string; bytes: number}>
  fix?: Partial<FixSettings>
}

interface Expect {
  /** The inspection facts, exactly. */
  facts: unknown
  /** Codes of the inspection risks, in order. */
  risks?: string[]
  applies: boolean
  /** Every recorded change: its path and a substring of its reason, in order. */
  changes: Array<{path: string; reason: string}>
  /** Every warning: its code and substrings of its message. */
  warnings: Array<{code: string; includes: string[]}>
  /** Links that must exist afterwards with this target. */
  links?: Record<string, string>
  /** Paths that must not exist afterwards. */
  absent?: string[]
  /** Substrings that no warning, change reason or risk may contain (the guest's secrets, a refused link's target). */
  neverSaid?: string[]
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

function buildGuest(folder: string): {guest: MemoryGuest; spec: GuestSpec} {
  const spec = JSON.parse(readFileSync(join(folder, 'guest.json'), 'utf8')) as GuestSpec
  const guest = new MemoryGuest()
  for (const file of filesUnder(join(folder, 'tree'))) guest.addFile(`/${relative(join(folder, 'tree'), file)}`, readFileSync(file, 'utf8'))
  for (const dir of spec.dirs ?? []) guest.addDir(dir)
  for (const [path, text] of Object.entries(spec.files ?? {})) guest.addFile(path, text)
  for (const [path, target] of Object.entries(spec.links ?? {})) guest.addLink(path, target)
  for (const [path, {bytes, line}] of Object.entries(spec.fill ?? {})) guest.addFile(path, line.repeat(Math.ceil(bytes / line.length)))
  return {guest, spec}
}

describe('VMware Tools: inspection facts and fixer:vmware-tools on in-memory guests (one case per folder)', () => {
  for (const name of readdirSync(CASES).sort()) {
    it(name, async () => {
      const folder = join(CASES, name)
      const expect = JSON.parse(readFileSync(join(folder, 'expect.json'), 'utf8')) as Expect
      const {guest, spec} = buildGuest(folder)
      const untouched = new Map([...guest.nodes].filter(([path]) => !(expect.changes.some((c) => c.path === path))))

      const inspected = await inspectVmwareTools(guest)
      assert.deepEqual(inspected.facts, expect.facts, 'inspection facts')
      assert.deepEqual(inspected.risks.map((r) => r.code), expect.risks ?? [], 'inspection risks')
      assert.equal(guest.writes.length, 0, 'inspection writes nothing')

      const job = memoryJob(guest, {fix: spec.fix, inspection: {vmwareTools: inspected.facts}})
      const applies = await vmwareToolsFixer.applies!(job.ctx)
      assert.equal(applies, expect.applies, 'applies')
      if (applies) await vmwareToolsFixer.run(job.ctx)

      assert.deepEqual(job.changes.map((c) => c.path), expect.changes.map((c) => c.path), 'changed paths')
      for (const [index, change] of expect.changes.entries()) assert.ok(job.changes[index]!.reason?.includes(change.reason), `reason of ${change.path}: ${job.changes[index]!.reason}`)
      for (const change of job.changes) assert.equal(change.stage, 'fixer:vmware-tools')
      assert.deepEqual(job.warnings.map((w) => w.code), expect.warnings.map((w) => w.code), `warnings: ${JSON.stringify(job.warnings)}`)
      for (const [index, warning] of expect.warnings.entries()) {
        for (const part of warning.includes) assert.ok(job.warnings[index]!.message.includes(part), `warning ${warning.code} should say "${part}": ${job.warnings[index]!.message}`)
      }
      for (const [path, target] of Object.entries(expect.links ?? {})) assert.equal(guest.link(path), target, `link ${path}`)
      for (const path of expect.absent ?? []) assert.equal(guest.nodes.has(path), false, `${path} should be gone`)
      for (const file of filesUnder(join(folder, 'expected'))) {
        const path = `/${relative(join(folder, 'expected'), file)}`
        assert.equal(guest.file(path), readFileSync(file, 'utf8'), `content of ${path}`)
      }
      // Nothing else moved: every node no change names and no expected/ file covers is as it was.
      const covered = new Set([...filesUnder(join(folder, 'expected')).map((f) => `/${relative(join(folder, 'expected'), f)}`), ...Object.keys(expect.links ?? {}), ...(expect.absent ?? [])])
      for (const [path, node] of untouched) {
        if (covered.has(path)) continue
        assert.deepEqual(guest.nodes.get(path), node, `${path} must be left as it was`)
      }
      const said = [...job.warnings.map((w) => w.message), ...job.changes.map((c) => c.reason ?? ''), ...inspected.risks.map((r) => r.message), ...inspected.facts.found].join('\n')
      for (const secret of expect.neverSaid ?? []) assert.ok(!said.includes(secret), `"${secret}" must never be repeated`)
      assert.doesNotMatch(said, /[\u0000-\u0008\u000b-\u001f\u007f]/, 'no control characters from the guest')
    })
  }
})
