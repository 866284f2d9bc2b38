import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {FixSettings, GuestSession} from '@hyper2kvm/plugin-api'

import {inspectVmwareTools} from '../../plugins/linux/src/vmware-tools-facts.js'
import {vmwareToolsFixer} from '../../plugins/linux/src/vmware-tools-fixer.js'
import {memoryJob} from './memory-guest.js'

// Each case is a folder test/unit/linux/vmware-tools-cases/<case>/ with
//   tree/      regular files of the guest, byte for byte (tree/etc/fstab is the guest's /etc/fstab)
//   guest.json {links: {path: target}, dirs: [paths], files: {path: text} (names git should not hold, e.g. with
//              control characters), fill: {path: {line, bytes}} (a large file made of one line repeated),
//              fix: FixSettings the job has (e.g. keepVmwareTools)}
//   expect.json what must happen: see Expect below
//   expected/  files whose content after the fixer must be exactly this
export const CASES_DIR = fileURLToPath(new URL('../unit/linux/vmware-tools-cases/', import.meta.url))

interface GuestSpec {
  links?: Record<string, string>
  dirs?: string[]
  files?: Record<string, string>
  fill?: Record<string, {line: string; bytes: number}>
  fix?: Partial<FixSettings>
}

export interface Expect {
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
  /** At most this many guest requests for the inspection (each is a guestfish round trip; every Linux guest pays them). */
  maxInspectCalls?: number
  /** Substrings that no warning, change reason or risk may contain (the guest's secrets, a refused link's target). */
  neverSaid?: string[]
}

export interface ToolsCase {
  name: string
  spec: GuestSpec
  expect: Expect
  /** The guest's regular files (tree/, files, fill) in planting order. */
  files: Array<[string, string]>
  /** expected/: path → content after the fixer. */
  expected: Map<string, string>
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

export function toolsCases(): ToolsCase[] {
  return readdirSync(CASES_DIR).sort().map((name) => {
    const folder = join(CASES_DIR, name)
    const spec = JSON.parse(readFileSync(join(folder, 'guest.json'), 'utf8')) as GuestSpec
    const expect = JSON.parse(readFileSync(join(folder, 'expect.json'), 'utf8')) as Expect
    const files: Array<[string, string]> = filesUnder(join(folder, 'tree')).map((f) => [`/${relative(join(folder, 'tree'), f)}`, readFileSync(f, 'utf8')])
    files.push(...Object.entries(spec.files ?? {}))
    for (const [path, {bytes, line}] of Object.entries(spec.fill ?? {})) files.push([path, line.repeat(Math.ceil(bytes / line.length))])
    const expected = new Map(filesUnder(join(folder, 'expected')).map((f) => [`/${relative(join(folder, 'expected'), f)}`, readFileSync(f, 'utf8')]))
    return {expect, expected, files, name, spec}
  })
}

/** How a test builds the guest: in memory, or in a host directory that becomes a tar for the appliance. */
export interface GuestPlanter {
  dir(path: string): void
  file(path: string, text: string): void
  link(path: string, target: string): void
}

/** How a test looks at the guest afterwards. */
export interface GuestHands {
  /** A link's target, or undefined when the path is not a link. */
  readLink(path: string): Promise<string | undefined>
  /** Whether anything (a link included) is at the path. */
  present(path: string): Promise<boolean>
  content(path: string): Promise<string | null>
}

/** Files, then directories, then links: nothing is ever written through a link the case plants (on the host either). */
export function plantCase(c: ToolsCase, planter: GuestPlanter): void {
  for (const [path, text] of c.files) planter.file(path, text)
  for (const dir of c.spec.dirs ?? []) planter.dir(dir)
  for (const [path, target] of Object.entries(c.spec.links ?? {})) planter.link(path, target)
}

/** Inspect, ask applies(), run the fixer, and check everything the case expects. */
export async function checkCase(c: ToolsCase, session: GuestSession, hands: GuestHands, requests?: () => number): Promise<void> {
  const {expect} = c
  const before = requests?.() ?? 0
  const inspected = await inspectVmwareTools(session)
  if (requests && expect.maxInspectCalls !== undefined) assert.ok(requests() - before <= expect.maxInspectCalls, `inspection made ${requests() - before} guest requests, at most ${expect.maxInspectCalls} expected`)
  assert.deepEqual(inspected.facts, expect.facts, 'inspection facts')
  assert.deepEqual(inspected.risks.map((r) => r.code), expect.risks ?? [], 'inspection risks')

  const job = memoryJob(session, {fix: c.spec.fix, inspection: {vmwareTools: inspected.facts}})
  const applies = await vmwareToolsFixer.applies!(job.ctx)
  assert.equal(applies, expect.applies, 'applies')
  if (applies) await vmwareToolsFixer.run(job.ctx)

  assert.deepEqual(job.changes.map((ch) => ch.path), expect.changes.map((ch) => ch.path), 'changed paths')
  for (const [index, change] of expect.changes.entries()) assert.ok(job.changes[index]!.reason?.includes(change.reason), `reason of ${change.path}: ${job.changes[index]!.reason}`)
  for (const change of job.changes) assert.equal(change.stage, 'fixer:vmware-tools')
  assert.deepEqual(job.warnings.map((w) => w.code), expect.warnings.map((w) => w.code), `warnings: ${JSON.stringify(job.warnings)}`)
  for (const [index, warning] of expect.warnings.entries()) {
    for (const part of warning.includes) assert.ok(job.warnings[index]!.message.includes(part), `warning ${warning.code} should say "${part}": ${job.warnings[index]!.message}`)
  }
  for (const [path, target] of Object.entries(expect.links ?? {})) assert.equal(await hands.readLink(path), target, `link ${path}`)
  for (const path of expect.absent ?? []) assert.equal(await hands.present(path), false, `${path} should be gone`)
  for (const [path, text] of c.expected) assert.equal(await hands.content(path), text, `content of ${path}`)
  // Every other regular file of the guest (the targets of hostile links among them) is as it was.
  for (const [path, text] of c.files) if (!c.expected.has(path)) assert.equal(await hands.content(path), text, `${path} must be left as it was`)

  const said = [...job.warnings.map((w) => w.message), ...job.changes.map((ch) => `${ch.path} ${ch.reason ?? ''}`), ...inspected.risks.map((r) => r.message), ...inspected.facts.found].join('\n')
  for (const secret of expect.neverSaid ?? []) assert.ok(!said.includes(secret), `"${secret}" must never be repeated`)
  assert.doesNotMatch(said, /[\u0000-\u0008\u000b-\u001f\u007f]/, 'no control characters from the guest')
}
