/**
 * Bare filesystem images (test/integration/bare-fs-cases/<case>/case.json): ext2/3/4, XFS and btrfs made by
 * the host's mkfs on a sparse file, with no partition table (old paravirtual AMIs, Xen exports), some with a
 * tiny Debian tree inside, some with hostile or cut-short superblocks. Each is converted by the real CLI:
 * the claim (loader, by content or by name, the filesystem) is recorded, the output is identical to the
 * source (`qemu-img compare`), the source is untouched; with a guest inside, inspection finds Linux on the
 * whole disk, says partitioned: false and NO_BOOTLOADER in words, and no boot fix is attempted. A superblock
 * that is incomplete or impossible is no bare filesystem: plain raw by its name, or a clear error.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {type BareFsType, makeBareFs, makeOsTree} from '../helpers/bare-fs-image.js'
import {runCli, sha256} from '../helpers/run-cli.js'
import {craftTar} from '../helpers/tar-craft.js'
import {makeTempDir} from '../helpers/temp-dir.js'

interface CaseSpec {
  description: string
  build: {
    fs: BareFsType
    /** Put a tiny Debian tree in (then the case runs inspection: one appliance start under TCG). */
    os?: boolean
    name: string
    /** Bytes written over the made filesystem: hex or latin1 text at an offset. */
    tamper?: Array<{at: number; hex?: string; text?: string}>
    truncate?: number
    /** Pack the image as this member of a tarball named `name` (an AWS export tarball). */
    tar?: string
  }
  args?: string[]
  expect: {
    code?: string
    /** The start of the error's message. */
    message?: string
    loader?: string
    claim?: 'content' | 'extension'
    subformat?: string
    warnings?: string[]
    inspection?: {os: string; distro: string; fstype: string; fstabRoot: string; configs: string[]}
  }
}

const CASES = fileURLToPath(new URL('bare-fs-cases/', import.meta.url))
const BOOT_FIXERS = ['fixer:fstab', 'fixer:grub', 'fixer:initramfs']

function loadCases(): Array<{name: string; spec: CaseSpec}> {
  return readdirSync(CASES)
    .sort()
    .map((name) => ({name, spec: JSON.parse(readFileSync(join(CASES, name, 'case.json'), 'utf8')) as CaseSpec}))
}

/** Builds the case's input in `dir`; returns it and the raw image its output must equal. */
function build(dir: string, spec: CaseSpec['build']): {input: string; image: string} {
  let tree: string | undefined
  if (spec.os) {
    tree = join(dir, 'tree')
    makeOsTree(tree)
  }
  mkdirSync(join(dir, 'input'))
  const image = spec.tar ? join(dir, spec.tar) : join(dir, 'input', spec.name)
  makeBareFs(spec.fs, image, tree)
  rmSync(`${image}.proto`, {force: true})
  const fd = openSync(image, 'r+')
  try {
    for (const patch of spec.tamper ?? []) writeSync(fd, patch.hex ? Buffer.from(patch.hex, 'hex') : Buffer.from(patch.text ?? '', 'latin1'), 0, undefined, patch.at)
  } finally {
    closeSync(fd)
  }
  if (spec.truncate !== undefined) truncateSync(image, spec.truncate)
  if (!spec.tar) return {image, input: image}
  const input = join(dir, 'input', spec.name)
  writeFileSync(input, craftTar([{data: readFileSync(image), name: spec.tar}]))
  return {image, input}
}

describe('bare filesystem images (no partition table)', function () {
  // Cases with a guest inside start the appliance under TCG (~20-60 s each on a busy machine).
  this.timeout(600_000)
  let root: string
  let cleanup: () => void
  before(() => ({cleanup, dir: root} = makeTempDir('h2k-barefs-')))
  after(() => cleanup())

  for (const {name, spec} of loadCases()) {
    it(`${name}: ${spec.description}`, async () => {
      const dir = join(root, name)
      mkdirSync(dir)
      const {image, input} = build(dir, spec.build)
      const before = sha256(input)
      const out = join(dir, 'out')
      const result = await runCli(['convert', input, '--output-dir', out, '--accel', 'tcg', '--verify', '--json', ...(spec.args ?? [])])
      assert.equal(sha256(input), before, 'the source is untouched')
      const {expect} = spec
      if (expect.code) {
        assert.notEqual(result.code, 0)
        assert.equal(result.json?.error?.code, expect.code, result.stdout + result.stderr)
        if (expect.message) assert.ok(result.json.error.message.startsWith(expect.message), result.json.error.message)
        return
      }
      assert.equal(result.code, 0, result.stderr + result.stdout)
      const json = result.json
      assert.equal(json.input.loader, expect.loader)
      assert.equal(json.input.claim, expect.claim)
      assert.equal(json.input.subformat, expect.subformat)
      const warnings = json.warnings.map((w: {code: string}) => w.code)
      for (const code of expect.warnings ?? []) assert.ok(warnings.includes(code), `warning ${code} in ${warnings.join(', ')}`)
      if (!expect.warnings?.includes('BARE_FS_TRUNCATED')) assert.ok(!warnings.includes('BARE_FS_TRUNCATED'), warnings.join(', '))
      const bare = ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs'].includes(expect.subformat ?? '')
      assert.equal(json.input.notes.some((n: string) => /no partition table/.test(n)), bare, json.input.notes.join('; '))

      // The output holds exactly the source's bytes, as qemu-img compare sees them.
      const output = json.outputs[0].path as string
      assert.deepEqual(json.verification.compare, [{output, result: 'identical'}])
      execFileSync('qemu-img', ['compare', '-q', '-f', 'raw', '-F', json.outputs[0].format, image, output])

      const status = (id: string) => json.stages.find((s: {id: string}) => s.id === id)?.status
      if (!expect.inspection) {
        assert.equal(json.inspection, undefined)
        return
      }
      const inspection = json.inspection
      assert.equal(status('inspector:guest'), 'ok')
      assert.equal(inspection.os, expect.inspection.os)
      assert.equal(inspection.distro, expect.inspection.distro)
      assert.equal(inspection.root, '/dev/sda', 'the whole disk is the root filesystem')
      assert.equal(inspection.partitioned, false)
      assert.equal(inspection.bootloader, undefined, 'a boot loader config in the filesystem is not a boot loader')
      const risk = inspection.risks.find((r: {code: string}) => r.code === 'NO_BOOTLOADER')
      assert.ok(risk, JSON.stringify(inspection.risks))
      assert.ok(
        risk.message.startsWith(`The image is a bare ${expect.inspection.fstype} filesystem with no partition table and no boot loader: it cannot boot on its own; boot it with a kernel and initrd from the host (direct kernel boot) or install a boot loader.`),
        risk.message,
      )
      const uuid = execFileSync('blkid', ['-s', 'UUID', '-o', 'value', image], {encoding: 'utf8'}).trim()
      assert.match(risk.message, new RegExp(`root=UUID=${uuid} \\(or root=/dev/vda\\)`))
      assert.ok(risk.message.includes(`mounts / from ${expect.inspection.fstabRoot}, which will not exist: it needs UUID=${uuid} there`), risk.message)
      for (const config of expect.inspection.configs) assert.ok(risk.message.includes(config), risk.message)
      assert.ok(warnings.includes('NO_BOOTLOADER'), 'said where the user sees it, not only in the inspection')
      // No boot fix is attempted: the boot fixers are skipped and nothing in the guest changed.
      for (const id of BOOT_FIXERS) assert.equal(status(id), 'skipped', id)
      assert.deepEqual(json.changes, [])
    })
  }
})
