import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {copyFileSync, mkdirSync, readFileSync, renameSync, rmSync} from 'node:fs'
import {join, sep} from 'node:path'

import {vmdkLoader} from '../../plugins/vmware/src/vmdk-loader.js'
import {type BlockdevSpec, type JobSettings, type Source, specFiles} from '@hyper2kvm/plugin-api'
import {convertSpecToRaw, loadWith, probeInputFor} from '../helpers/loader-harness.js'
import {convertFixture, makePatternedRaw, sameContent, writePattern} from '../helpers/patterned-image.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {contentIds, makeFooterStream, rawSlice, writeDescriptor} from '../helpers/vmdk-fixtures.js'

const MiB = 1024 * 1024
const SECTORS_64M = 131072

/** What a snapshot writes on top of the fixture: overlaps a base region, fills a hole, and the last MiB. */
const CHILD_REGIONS = [
  {length: 64 * 1024, offset: 1 * MiB, pattern: 0x77},
  {length: 128 * 1024, offset: 3 * MiB + 512 * 1024, pattern: 0x88},
  {length: 4096, offset: 63 * MiB, pattern: 0x99},
]
const GRANDCHILD_REGIONS = [
  {length: 8192, offset: 0, pattern: 0xaa},
  {length: 64 * 1024, offset: 31 * MiB + 64 * 1024, pattern: 0xbb},
]

/** Every node names its format; every format that could have a backing states it; every file is accounted for. */
function assertSpecIsExplicit(spec: BlockdevSpec, source: Source, workDir: string): void {
  const visit = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return
    const n = node as Record<string, unknown>
    assert.equal(typeof n.driver, 'string', `node without driver: ${JSON.stringify(n)}`)
    if (n.driver === 'vmdk') assert.ok('backing' in n, `vmdk node without explicit backing: ${JSON.stringify(n)}`)
    for (const value of Object.values(n)) visit(value)
  }
  visit(spec)
  for (const file of specFiles(spec)) {
    assert.ok(file.startsWith(sep), `relative file in spec: ${file}`)
    assert.ok(source.disks[0]!.files.includes(file) || file.startsWith(workDir + sep), `spec reads ${file}, which the source does not list`)
  }
}

describe('VMware VMDK loader (qemu-img fixtures)', function () {
  let root: string
  let cleanup: () => void
  let raw: string

  before(() => {
    ;({cleanup, dir: root} = makeTempDir('h2k-vmdk-'))
    raw = makePatternedRaw(join(root, 'expected.raw'))
  })
  after(() => cleanup())

  function folder(name: string): string {
    const dir = join(root, name)
    mkdirSync(dir)
    return dir
  }

  /** Load `path`, convert the disk spec with qemu-img and compare with the expected raw image. */
  async function loadAndCompare(path: string, expected = raw, settings: Partial<JobSettings> = {}): Promise<{source: Source; copy?: string}> {
    const loaded = await loadWith(vmdkLoader, path, settings)
    try {
      assert.equal(loaded.source.disks.length, 1)
      const disk = loaded.source.disks[0]!
      assertSpecIsExplicit(disk.spec, loaded.source, loaded.workDir)
      const out = convertSpecToRaw(disk.spec, join(loaded.workDir, 'out.raw'))
      assert.ok(sameContent(out, 'raw', expected, 'raw'), `${path}: converted content differs from the expected image`)
      const copy = specFiles(disk.spec).find((file) => file.startsWith(loaded.workDir + sep))
      return {copy: copy ? readFileSync(copy, 'utf8') : undefined, source: loaded.source}
    } finally {
      loaded.cleanup()
    }
  }

  it('monolithicSparse', async () => {
    const disk = convertFixture(raw, join(folder('sparse'), 'disk.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
    const input = await probeInputFor(disk)
    assert.deepEqual(await vmdkLoader.probe(input), {by: 'content', format: 'vmdk', subformat: 'monolithicSparse'})
    const {source} = await loadAndCompare(disk)
    assert.equal(source.name, 'disk')
    assert.equal(source.subformat, 'monolithicSparse')
    assert.deepEqual(source.disks[0]!.files, [disk])
    assert.equal(source.disks[0]!.spec.driver, 'vmdk')
    assert.equal(source.disks[0]!.spec.backing, null)
  })

  it('streamOptimized as qemu writes it (grain directory at the start)', async () => {
    const disk = convertFixture(raw, join(folder('stream'), 'disk.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    const {source} = await loadAndCompare(disk)
    assert.equal(source.subformat, 'streamOptimized')
  })

  it('streamOptimized as VMware writes it (grain directory at the end, footer, end-of-stream marker)', async () => {
    const disk = makeFooterStream(convertFixture(raw, join(folder('stream-footer'), 'disk.vmdk'), 'vmdk', ['subformat=streamOptimized']))
    assert.equal(readFileSync(disk).readBigUInt64LE(56), 0xffffffffffffffffn, 'fixture header says "grain directory at end"')
    const {source} = await loadAndCompare(disk)
    assert.equal(source.subformat, 'streamOptimized')
  })

  it('monolithicFlat: one flat extent is read as a raw slice', async () => {
    const dir = folder('flat')
    const disk = convertFixture(raw, join(dir, 'disk.vmdk'), 'vmdk', ['subformat=monolithicFlat'])
    const {source} = await loadAndCompare(disk)
    assert.equal(source.subformat, 'monolithicFlat')
    const spec = source.disks[0]!.spec
    assert.equal(spec.driver, 'raw')
    assert.equal(spec.offset, 0)
    assert.equal(spec.size, 64 * MiB)
    assert.deepEqual(source.disks[0]!.files, [disk, join(dir, 'disk-flat.vmdk')])
  })

  it('pointing at a -flat.vmdk finds its descriptor', async () => {
    const dir = folder('flat-pointing')
    convertFixture(raw, join(dir, 'web01.vmdk'), 'vmdk', ['subformat=monolithicFlat'])
    const extent = join(dir, 'web01-flat.vmdk')
    assert.deepEqual(await vmdkLoader.probe(await probeInputFor(extent)), {by: 'content', format: 'vmdk', subformat: 'monolithicFlat'})
    const {source} = await loadAndCompare(extent)
    assert.equal(source.name, 'web01')
    assert.equal(source.input, extent)
    assert.ok(source.notes?.some((note) => note.includes('web01-flat.vmdk is an extent of web01.vmdk')), String(source.notes))
  })

  it('twoGbMaxExtentSparse, through the descriptor and through its -s001 extent', async () => {
    const dir = folder('split-sparse')
    const disk = convertFixture(raw, join(dir, 'disk.vmdk'), 'vmdk', ['subformat=twoGbMaxExtentSparse'])
    const {source} = await loadAndCompare(disk)
    assert.equal(source.subformat, 'twoGbMaxExtentSparse')
    assert.deepEqual(source.disks[0]!.files, [disk, join(dir, 'disk-s001.vmdk')])
    const viaExtent = await loadAndCompare(join(dir, 'disk-s001.vmdk'))
    assert.equal(viaExtent.source.name, 'disk')
  })

  it('twoGbMaxExtentFlat', async () => {
    const dir = folder('split-flat')
    const disk = convertFixture(raw, join(dir, 'disk.vmdk'), 'vmdk', ['subformat=twoGbMaxExtentFlat'])
    const {source} = await loadAndCompare(disk)
    assert.equal(source.subformat, 'twoGbMaxExtentFlat')
    assert.deepEqual(source.disks[0]!.files, [disk, join(dir, 'disk-f001.vmdk')])
  })

  it('a flat disk split into 2 files at 32 MiB (the second with a data offset) opens through a sanitized descriptor', async () => {
    const dir = folder('split-flat-2')
    rawSlice(raw, join(dir, 'big-f001.vmdk'), 0, 32)
    // The second extent starts 1 MiB into its file, behind bytes that must never be read as disk data.
    const second = join(dir, 'big-f002.vmdk')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', second, String(33 * MiB)])
    writePattern(second, 'raw', [{length: MiB, offset: 0, pattern: 0xee}])
    rawSlice(raw, join(dir, 'tail.raw'), 32, 32)
    execFileSync('qemu-io', ['-f', 'raw', '-c', `write -s ${join(dir, 'tail.raw')} ${MiB} ${32 * MiB}`, second], {stdio: 'pipe'})
    rmSync(join(dir, 'tail.raw'))
    const disk = writeDescriptor(join(dir, 'big.vmdk'), 'twoGbMaxExtentFlat', ['RW 65536 FLAT "big-f001.vmdk" 0', 'RW 65536 FLAT "big-f002.vmdk" 2048'])
    const {copy, source} = await loadAndCompare(disk)
    assert.deepEqual(source.disks[0]!.files, [disk, join(dir, 'big-f001.vmdk'), second])
    assert.ok(copy, 'a sanitized descriptor copy was used')
    assert.match(copy, /createType="vmfs"/)
    assert.ok(copy.includes(`RW 65536 FLAT "${join(dir, 'big-f001.vmdk')}" 0`), copy)
    assert.ok(copy.includes(`RW 65536 FLAT "${second}" 2048`), copy)
  })

  it('a sparse disk split into 2 extents opens through a sanitized descriptor', async () => {
    const dir = folder('split-sparse-2')
    for (const [index, offset] of [[1, 0], [2, 32]] as const) {
      const half = rawSlice(raw, join(dir, `half${index}.raw`), offset, 32)
      convertFixture(half, join(dir, `half${index}.vmdk`), 'vmdk', ['subformat=twoGbMaxExtentSparse'])
      renameSync(join(dir, `half${index}-s001.vmdk`), join(dir, `disk-s00${index}.vmdk`))
      rmSync(half)
      rmSync(join(dir, `half${index}.vmdk`))
    }
    const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'twoGbMaxExtentSparse', ['RW 65536 SPARSE "disk-s001.vmdk"', 'RW 65536 SPARSE "disk-s002.vmdk"'])
    const {copy, source} = await loadAndCompare(disk)
    assert.equal(source.subformat, 'twoGbMaxExtentSparse')
    assert.match(copy ?? '', /createType="twoGbMaxExtentSparse"/)
    assert.equal(source.disks[0]!.files.length, 3)
  })

  for (const createType of ['vmfs', 'vmfsThin']) {
    it(`ESXi ${createType}: VMFS extent without offset`, async () => {
      const dir = folder(`esxi-${createType}`)
      convertFixture(raw, join(dir, 'qemu.vmdk'), 'vmdk', ['subformat=monolithicFlat'])
      renameSync(join(dir, 'qemu-flat.vmdk'), join(dir, 'web01-flat.vmdk'))
      rmSync(join(dir, 'qemu.vmdk'))
      const disk = writeDescriptor(join(dir, 'web01.vmdk'), createType, [`RW ${SECTORS_64M} VMFS "web01-flat.vmdk"`])
      const {source} = await loadAndCompare(disk)
      assert.equal(source.subformat, createType)
      assert.equal(source.disks[0]!.spec.driver, 'raw', 'qemu rejects vmfsThin descriptors, so the flat file is read as raw')
    })
  }

  describe('snapshot chains', () => {
    let chain: string
    let childExpected: string

    before(() => {
      chain = folder('chain')
      convertFixture(raw, join(chain, 'base.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', 'base-000001.vmdk'], {cwd: chain})
      writePattern(join(chain, 'base-000001.vmdk'), 'vmdk', CHILD_REGIONS)
      childExpected = join(root, 'child-expected.raw')
      copyFileSync(raw, childExpected)
      writePattern(childExpected, 'raw', CHILD_REGIONS)
    })

    it('a 2-level chain is flattened (child over parent)', async () => {
      const child = join(chain, 'base-000001.vmdk')
      assert.equal(contentIds(child).parentCid, contentIds(join(chain, 'base.vmdk')).cid)
      const {source} = await loadAndCompare(child, childExpected)
      const spec = source.disks[0]!.spec
      assert.equal(spec.driver, 'vmdk')
      assert.equal((spec.backing as BlockdevSpec).driver, 'vmdk')
      assert.equal((spec.backing as BlockdevSpec).backing, null)
      assert.deepEqual(source.disks[0]!.files, [child, join(chain, 'base.vmdk')])
      assert.ok(source.notes?.some((note) => note.includes('snapshot chain of 2 disks')), String(source.notes))
    })

    it('a 3-level chain with a split (text descriptor) disk in the middle', async () => {
      const dir = folder('chain3')
      convertFixture(raw, join(dir, 'base.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', '-b', 'base.vmdk', '-F', 'vmdk', 'mid.vmdk'], {cwd: dir})
      writePattern(join(dir, 'mid.vmdk'), 'vmdk', CHILD_REGIONS)
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'mid.vmdk', '-F', 'vmdk', 'top.vmdk'], {cwd: dir})
      writePattern(join(dir, 'top.vmdk'), 'vmdk', GRANDCHILD_REGIONS)
      const expected = join(dir, 'expected.raw')
      copyFileSync(childExpected, expected)
      writePattern(expected, 'raw', GRANDCHILD_REGIONS)
      const {source} = await loadAndCompare(join(dir, 'top.vmdk'), expected)
      assert.ok(source.notes?.some((note) => note.includes('top.vmdk → mid.vmdk → base.vmdk')), String(source.notes))
      assert.deepEqual(source.disks[0]!.files, ['top.vmdk', 'mid.vmdk', 'mid-s001.vmdk', 'base.vmdk'].map((f) => join(dir, f)))
    })

    it('a snapshot of a flat disk opens its parent through a sanitized descriptor', async () => {
      const dir = folder('chain-flat')
      convertFixture(raw, join(dir, 'base.vmdk'), 'vmdk', ['subformat=monolithicFlat'])
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', 'child.vmdk'], {cwd: dir})
      writePattern(join(dir, 'child.vmdk'), 'vmdk', CHILD_REGIONS)
      const {source} = await loadAndCompare(join(dir, 'child.vmdk'), childExpected)
      // qemu reads a vmdk child through its backing only when the backing is a vmdk with the expected CID.
      const parent = source.disks[0]!.spec.backing as BlockdevSpec
      assert.equal(parent.driver, 'vmdk')
      assert.equal(parent.backing, null)
    })

    it('a chain inside its directory is flattened by default (no flag needed for VMDK snapshots)', async () => {
      const {source} = await loadWith(vmdkLoader, join(chain, 'base-000001.vmdk'))
      assert.ok(source.disks[0]!.spec.backing, 'the parent is opened explicitly as the backing')
    })

    it('a parent modified after the snapshot (content id mismatch) is refused', async () => {
      const dir = folder('chain-cid')
      convertFixture(raw, join(dir, 'base.vmdk'), 'vmdk', ['subformat=monolithicSparse'])
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', 'child.vmdk'], {cwd: dir})
      writePattern(join(dir, 'base.vmdk'), 'vmdk', [{length: 4096, offset: 0, pattern: 0x01}]) // qemu gives the base a new CID
      assert.notEqual(contentIds(join(dir, 'child.vmdk')).parentCid, contentIds(join(dir, 'base.vmdk')).cid)
      await assert.rejects(loadWith(vmdkLoader, join(dir, 'child.vmdk')), (error: {code?: string; message: string}) => {
        assert.equal(error.code, 'H2K_INPUT_CORRUPT', error.message)
        assert.match(error.message, /modified after the snapshot/)
        return true
      })
    })
  })
})
