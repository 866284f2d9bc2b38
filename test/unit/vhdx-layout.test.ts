import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {open, readdir, readFile, truncate, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {crc32c} from '../../plugins/hyperv/src/crc32c.js'
import {runTool} from '../../src/exec/run-tool.js'
import {buildDifferencingOverlay, type BuildDifferencingOverlayOptions} from '../../plugins/hyperv/src/vhdx-flatten.js'
import {parseGuid, readVhdxLayout, VHDX_GUIDS, type VhdxLayout, type VhdxRun} from '../../plugins/hyperv/src/vhdx-layout.js'
import {makeDifferencingVhdx, setChecksum} from '../helpers/make-avhdx.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const KiB = 1024
const MiB = 1024 * KiB
const SIZE = 64 * MiB

/** Flatten as the loader does, the tools run by the host's runner (ctx.exec), unsandboxed here. */
const flatten = (opts: Omit<BuildDifferencingOverlayOptions, 'run'>) =>
  buildDifferencingOverlay({...opts, run: (tool, args, extra) => runTool(tool, args, {cwd: extra.cwd, input: extra.input, signal: opts.signal})})

const run = (tool: string, args: string[]) => execFileSync(tool, args, {stdio: 'pipe'}).toString()

/** A dynamic VHDX made by qemu-img, with patterned regions written by qemu-io. */
function makeVhdx(path: string, blockSize: number, patterns: Array<[number, number, number]> = []): string {
  run('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', `block_size=${blockSize}`, path, String(SIZE)])
  if (patterns.length > 0) {
    run('qemu-io', ['-f', 'vhdx', ...patterns.flatMap(([p, off, len]) => ['-c', `write -q -P ${p} ${off} ${len}`]), path])
  }
  return path
}

/** Guest-visible content of an image, via qemu-img convert to raw. */
async function rawContent(image: string, format: string, dir: string): Promise<Buffer> {
  const out = join(dir, `raw-${randomBytes(4).toString('hex')}.img`)
  run('qemu-img', ['convert', '-f', format, '-O', 'raw', image, out])
  return readFile(out)
}

async function collect(layout: VhdxLayout): Promise<VhdxRun[]> {
  const runs: VhdxRun[] = []
  for await (const r of layout.runs) runs.push(r)
  return runs
}

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(length)
    await fh.read(buf, 0, length, offset)
    return buf
  } finally {
    await fh.close()
  }
}

async function patch(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    await fh.write(bytes, 0, bytes.length, offset)
  } finally {
    await fh.close()
  }
}

/** Rewrites a 4 KiB header (0 or 1), optionally keeping its checksum valid. */
async function patchHeader(path: string, index: number, mutate: (h: Buffer) => void, fixChecksum = true): Promise<void> {
  const offset = (index + 1) * 64 * KiB
  const header = await readRange(path, offset, 4 * KiB)
  mutate(header)
  if (fixChecksum) setChecksum(header)
  await patch(path, offset, header)
}

/** Offset in the file of a metadata table entry (32 bytes) with the given item GUID. */
async function metadataEntry(path: string, metadataOffset: number, guid: string): Promise<number> {
  const table = await readRange(path, metadataOffset, 64 * KiB)
  for (let i = 0; i < table.readUInt16LE(10); i++) {
    if (table.subarray(32 + i * 32, 48 + i * 32).equals(parseGuid(guid))) return metadataOffset + 32 + i * 32
  }
  throw new Error(`no metadata entry ${guid}`)
}

async function assertCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error, 'an Error')
    assert.equal((error as {code?: string}).code, code, `code of: ${error.message}`)
    if (message) assert.match(error.message, message)
    return true
  })
}

/** Every data run's file bytes equal the guest content, and every non-zero sector is covered by a run. */
async function assertRunsMatch(file: string, runs: VhdxRun[], expected: Buffer, sectorSize = 512): Promise<void> {
  const covered = new Uint8Array(expected.length / sectorSize)
  let last = -1
  for (const r of runs) {
    assert.ok(r.guestOffset >= last, 'runs ascend and do not overlap')
    assert.ok(r.length > 0 && r.length % sectorSize === 0 && r.guestOffset % sectorSize === 0)
    last = r.guestOffset + r.length
    covered.fill(1, r.guestOffset / sectorSize, last / sectorSize)
    const want = expected.subarray(r.guestOffset, r.guestOffset + r.length)
    if (r.zero)
      assert.ok(
        want.every((b) => b === 0),
        `zero run at ${r.guestOffset} is zero in the expected image`,
      )
    else assert.ok((await readRange(file, r.fileOffset, r.length)).equals(want), `run at guest ${r.guestOffset} matches`)
  }
  const zeroSector = Buffer.alloc(sectorSize)
  for (let s = 0; s < covered.length; s++) {
    if (!covered[s])
      assert.ok(expected.subarray(s * sectorSize, (s + 1) * sectorSize).equals(zeroSector), `sector ${s} holds data but no run covers it`)
  }
}

const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex')

describe('crc32c', () => {
  it('matches the Castagnoli check value', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
    assert.equal(crc32c(Buffer.from('6789'), crc32c(Buffer.from('12345'))), 0xe3069283)
  })
})

describe('readVhdxLayout', function () {
  this.timeout(120_000)
  let tmp: {dir: string; cleanup: () => void}
  beforeEach(() => (tmp = makeTempDir('h2k-vhdx-')))
  afterEach(() => tmp.cleanup())

  const patterns: Array<[number, number, number]> = [
    [0xab, 1 * MiB, 64 * KiB],
    [0xcd, 5 * MiB, 3 * MiB],
    [0x12, 32 * MiB, 512],
    [0xef, 63 * MiB, 1 * MiB],
  ]

  for (const blockSize of [1 * MiB, 32 * MiB]) {
    it(`reports the data runs of a qemu-created dynamic VHDX (block size ${blockSize / MiB} MiB)`, async () => {
      const image = makeVhdx(join(tmp.dir, 'disk.vhdx'), blockSize, patterns)
      const layout = await readVhdxLayout(image)
      assert.equal(layout.virtualSize, SIZE)
      assert.equal(layout.blockSize, blockSize)
      assert.equal(layout.logicalSectorSize, 512)
      assert.equal(layout.hasParent, false)
      assert.equal(layout.parentLocator, undefined)
      assert.equal(layout.chunkRatio, (2 ** 23 * 512) / blockSize)
      assert.equal(layout.blockCounts.partiallyPresent, 0)
      assert.ok(layout.blockCounts.fullyPresent > 0)
      const runs = await collect(layout)
      assert.ok(
        runs.every((r) => !r.zero),
        'a dynamic disk has no zero runs',
      )
      await assertRunsMatch(image, runs, await rawContent(image, 'vhdx', tmp.dir))
      assert.deepEqual(await collect(layout), runs, 'runs can be iterated again')
    })
  }

  it('covers the whole disk of a fixed VHDX', async () => {
    // block_state_zero=off: qemu otherwise marks even a fixed disk's blocks ZERO until written.
    const image = join(tmp.dir, 'fixed.vhdx')
    run('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', 'subformat=fixed,block_size=8M,block_state_zero=off', image, String(SIZE)])
    run('qemu-io', ['-f', 'vhdx', '-c', 'write -q -P 0x5a 3M 1M', '-c', `write -q -P 0x6b ${SIZE - 4096} 4096`, image])
    const layout = await readVhdxLayout(image)
    assert.equal(layout.blockCounts.fullyPresent, SIZE / (8 * MiB))
    const runs = await collect(layout)
    assert.deepEqual(
      runs.map((r) => [r.guestOffset, r.length, r.zero]),
      [[0, SIZE, undefined]],
      'one contiguous data run',
    )
    await assertRunsMatch(image, runs, await rawContent(image, 'vhdx', tmp.dir))
  })

  describe('differencing disks', () => {
    const parentPatterns = patterns
    /** The child's writes: a full block, partial blocks, a write across blocks, the last sector, random data. */
    const childWrites = () => [
      {offset: 2 * MiB, data: Buffer.alloc(1 * MiB, 0x31)},
      {offset: 1 * MiB + 4 * KiB, data: Buffer.alloc(8 * KiB, 0x32)},
      {offset: 5 * MiB + 512 * KiB, data: Buffer.alloc(1 * MiB, 0x33)},
      {offset: SIZE - 512, data: Buffer.alloc(512, 0x34)},
      {offset: 20 * MiB + 3 * 512, data: randomBytes(37 * 512)},
    ]
    const zeroBlocks = [7] // 7 MiB..8 MiB: the parent has 0xcd there, the child says zeros

    function merge(parent: Buffer, writes: Array<{offset: number; data: Buffer}>, zeroRanges: Array<[number, number]>): Buffer {
      const out = Buffer.from(parent)
      for (const [offset, length] of zeroRanges) out.fill(0, offset, offset + length)
      for (const w of writes) w.data.copy(out, w.offset)
      return out
    }

    it('parses the parent locator and the sector bitmaps of a child', async () => {
      const template = makeVhdx(join(tmp.dir, 'template.vhdx'), 1 * MiB)
      const child = join(tmp.dir, 'child.avhdx')
      const writes = childWrites()
      await makeDifferencingVhdx({template, out: child, parentRelativePath: 'parent.vhdx', writes, zeroBlocks})
      const layout = await readVhdxLayout(child)
      assert.equal(layout.hasParent, true)
      assert.equal(layout.parentLocatorType, VHDX_GUIDS.vhdxParentLocatorType)
      assert.equal(layout.parentLocator?.['relative_path'], '.\\parent.vhdx')
      assert.equal(layout.parentLocator?.['absolute_win32_path'], 'C:\\VMs\\parent.vhdx')
      assert.match(layout.parentLocator?.['parent_linkage'] ?? '', /^\{[0-9a-f-]{36}\}$/)
      assert.deepEqual(
        {full: layout.blockCounts.fullyPresent, partial: layout.blockCounts.partiallyPresent, zero: layout.blockCounts.zero},
        {full: 1, partial: 5, zero: 1},
      )
      const runs = await collect(layout)
      assert.deepEqual(
        runs.filter((r) => r.zero),
        [{guestOffset: 7 * MiB, length: 1 * MiB, zero: true}],
      )
      // Exactly the written sectors are data runs, and their bytes are the written bytes.
      const expected = merge(Buffer.alloc(SIZE), writes, [[7 * MiB, MiB]])
      const dataBytes = runs.filter((r) => !r.zero).reduce((n, r) => n + r.length, 0)
      assert.equal(
        dataBytes,
        writes.reduce((n, w) => n + w.data.length, 0),
      )
      await assertRunsMatch(child, runs, expected)
    })

    it('flattens a child over its parent into a qcow2 overlay', async () => {
      const template = makeVhdx(join(tmp.dir, 'template.vhdx'), 1 * MiB)
      const parent = makeVhdx(join(tmp.dir, 'parent.vhdx'), 32 * MiB, parentPatterns)
      const child = join(tmp.dir, 'child.avhdx')
      const writes = childWrites()
      await makeDifferencingVhdx({template, out: child, parentRelativePath: 'parent.vhdx', writes, zeroBlocks})
      const before = [await sha256(parent), await sha256(child)]

      const overlay = join(tmp.dir, 'merged.qcow2')
      await flatten({child, overlayPath: overlay, parentSpec: {driver: 'vhdx', file: {driver: 'file', filename: parent}}})

      const expected = merge(await rawContent(parent, 'vhdx', tmp.dir), writes, [[7 * MiB, MiB]])
      const expectedPath = join(tmp.dir, 'expected.raw')
      await writeFile(expectedPath, expected)
      run('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'qcow2', expectedPath, overlay])
      assert.ok((await rawContent(overlay, 'qcow2', tmp.dir)).equals(expected), 'byte-identical merge')
      const info = JSON.parse(run('qemu-img', ['info', '--output=json', '-f', 'qcow2', overlay])) as Record<string, unknown>
      assert.equal(info['backing-filename-format'], 'vhdx')
      assert.deepEqual([await sha256(parent), await sha256(child)], before, 'parent and child are only read')
      assert.deepEqual(
        (await readdir(tmp.dir)).filter((n) => n.startsWith('.vhdx-flatten-')),
        [],
        'staging files are removed',
      )
    })

    it('flattens a chain: a child of a child, over the first overlay', async () => {
      const template = makeVhdx(join(tmp.dir, 'template.vhdx'), 1 * MiB)
      const base = makeVhdx(join(tmp.dir, 'base.vhdx'), 32 * MiB, parentPatterns)
      const child1 = join(tmp.dir, 'snap1.avhdx')
      const child2 = join(tmp.dir, 'snap2.avhdx')
      const writes1 = childWrites()
      const writes2 = [
        {offset: 1 * MiB, data: Buffer.alloc(4 * KiB, 0x41)},
        {offset: 7 * MiB + 4 * KiB, data: Buffer.alloc(4 * KiB, 0x42)},
        {offset: 2 * MiB + 512, data: randomBytes(1536)},
      ]
      await makeDifferencingVhdx({template, out: child1, parentRelativePath: 'base.vhdx', writes: writes1, zeroBlocks})
      await makeDifferencingVhdx({template, out: child2, parentRelativePath: 'snap1.avhdx', writes: writes2})

      const overlay1 = join(tmp.dir, 'snap1.qcow2')
      const overlay2 = join(tmp.dir, 'snap2.qcow2')
      await flatten({
        child: child1,
        overlayPath: overlay1,
        parentSpec: {driver: 'vhdx', file: {driver: 'file', filename: base}},
      })
      await flatten({
        child: child2,
        overlayPath: overlay2,
        parentSpec: {driver: 'qcow2', file: {driver: 'file', filename: overlay1}},
      })

      const expected = merge(merge(await rawContent(base, 'vhdx', tmp.dir), writes1, [[7 * MiB, MiB]]), writes2, [])
      assert.ok((await rawContent(overlay2, 'qcow2', tmp.dir)).equals(expected))
    })

    it('flattens thousands of scattered sectors (several qemu-io batches)', async () => {
      const template = makeVhdx(join(tmp.dir, 'template.vhdx'), 1 * MiB)
      const parent = makeVhdx(join(tmp.dir, 'parent.vhdx'), 32 * MiB, parentPatterns)
      const child = join(tmp.dir, 'child.avhdx')
      // Every other sector of 5 MiB: 5120 separate runs.
      const writes = Array.from({length: 5120}, (_, i) => ({offset: 4 * MiB + i * 1024, data: Buffer.alloc(512, (i % 250) + 1)}))
      await makeDifferencingVhdx({template, out: child, parentRelativePath: 'parent.vhdx', writes})
      assert.equal((await collect(await readVhdxLayout(child))).length, 5120)
      const overlay = join(tmp.dir, 'merged.qcow2')
      await flatten({child, overlayPath: overlay, parentSpec: {driver: 'vhdx', file: {driver: 'file', filename: parent}}})
      const expected = merge(await rawContent(parent, 'vhdx', tmp.dir), writes, [])
      assert.ok((await rawContent(overlay, 'qcow2', tmp.dir)).equals(expected))
    })

    it('handles 4 KiB logical sectors', async () => {
      const template = makeVhdx(join(tmp.dir, 'template.vhdx'), 1 * MiB)
      // qemu cannot create 4K-sector VHDX files: patch the template's Logical Sector Size item.
      const meta = (await readVhdxLayout(template)).regions.metadata.offset
      const entry = await metadataEntry(template, meta, VHDX_GUIDS.logicalSectorSize)
      const item = meta + (await readRange(template, entry + 16, 4)).readUInt32LE(0)
      await patch(template, item, Buffer.from([0, 0x10, 0, 0]))
      const parent = makeVhdx(join(tmp.dir, 'parent.vhdx'), 32 * MiB, parentPatterns)
      const child = join(tmp.dir, 'child.avhdx')
      const writes = [
        {offset: 1 * MiB + 8 * KiB, data: randomBytes(12 * KiB)},
        {offset: 9 * MiB, data: Buffer.alloc(2 * MiB, 0x77)},
      ]
      await makeDifferencingVhdx({template, out: child, parentRelativePath: 'parent.vhdx', writes})
      const layout = await readVhdxLayout(child)
      assert.equal(layout.logicalSectorSize, 4096)
      assert.equal(layout.chunkRatio, (2 ** 23 * 4096) / MiB)
      assert.deepEqual(
        (await collect(layout)).map((r) => [r.guestOffset, r.length]),
        [
          [1 * MiB + 8 * KiB, 12 * KiB],
          [9 * MiB, 2 * MiB],
        ],
      )
      const overlay = join(tmp.dir, 'merged.qcow2')
      await flatten({child, overlayPath: overlay, parentSpec: {driver: 'vhdx', file: {driver: 'file', filename: parent}}})
      const expected = merge(await rawContent(parent, 'vhdx', tmp.dir), writes, [])
      assert.ok((await rawContent(overlay, 'qcow2', tmp.dir)).equals(expected))
    })

    it('refuses to flatten a disk that has no parent, and leaves no overlay', async () => {
      const image = makeVhdx(join(tmp.dir, 'disk.vhdx'), 1 * MiB, patterns)
      const overlay = join(tmp.dir, 'o.qcow2')
      await assertCode(
        flatten({
          child: image,
          overlayPath: overlay,
          parentSpec: {driver: 'vhdx', file: {driver: 'file', filename: image}},
        }),
        'VHDX_UNSUPPORTED',
      )
      await assert.rejects(readFile(overlay), {code: 'ENOENT'})
    })

    it('stops when the signal aborts midway and removes the overlay and staging files', async () => {
      const template = makeVhdx(join(tmp.dir, 'template.vhdx'), 1 * MiB)
      const parent = makeVhdx(join(tmp.dir, 'parent.vhdx'), 32 * MiB, parentPatterns)
      const child = join(tmp.dir, 'child.avhdx')
      const writes = Array.from({length: 5120}, (_, i) => ({offset: 4 * MiB + i * 1024, data: Buffer.alloc(512, 1)}))
      await makeDifferencingVhdx({template, out: child, parentRelativePath: 'parent.vhdx', writes})
      const overlay = join(tmp.dir, 'o.qcow2')
      const controller = new AbortController()
      const progress: number[] = []
      const onProgress = (n: number) => {
        progress.push(n)
        controller.abort(new Error('stop now'))
      }
      const parentSpec = {driver: 'vhdx', file: {driver: 'file', filename: parent}}
      await assert.rejects(
        flatten({child, overlayPath: overlay, signal: controller.signal, onProgress, parentSpec}),
        /stop now/,
      )
      assert.equal(progress.length, 1, 'aborted after the first batch')
      await assert.rejects(readFile(overlay), {code: 'ENOENT'})
      assert.deepEqual(
        (await readdir(tmp.dir)).filter((n) => n.startsWith('.vhdx-flatten-')),
        [],
      )
    })
  })

  describe('hostile input', () => {
    let image: string
    let layout: VhdxLayout
    beforeEach(async () => {
      image = makeVhdx(join(tmp.dir, 'disk.vhdx'), 1 * MiB, patterns)
      layout = await readVhdxLayout(image)
    })

    it('refuses a file that is not a VHDX', async () => {
      const other = join(tmp.dir, 'other.img')
      await writeFile(other, randomBytes(2 * MiB))
      await assertCode(readVhdxLayout(other), 'VHDX_CORRUPT', /vhdxfile/)
      await writeFile(other, Buffer.alloc(0))
      await assertCode(readVhdxLayout(other), 'VHDX_CORRUPT')
    })

    it('refuses a truncated file', async () => {
      await truncate(image, 200 * KiB)
      await assertCode(readVhdxLayout(image), 'VHDX_CORRUPT')
    })

    it('refuses a file truncated inside its data blocks', async () => {
      const runs = await collect(layout)
      const lastRun = runs.at(-1)
      assert.ok(lastRun && !lastRun.zero)
      await truncate(image, lastRun.fileOffset + 4096)
      await assertCode(readVhdxLayout(image), 'VHDX_CORRUPT', /outside the file/)
    })

    it('falls back to the other header when the current one has a bad CRC, and refuses when both are bad', async () => {
      const seq = async (i: number) => (await readRange(image, (i + 1) * 64 * KiB + 8, 8)).readBigUInt64LE(0)
      const current = (await seq(0)) > (await seq(1)) ? 0 : 1
      await patchHeader(image, current, (h) => (h[100] = 0x5a), false)
      assert.equal((await readVhdxLayout(image)).virtualSize, SIZE)
      await patchHeader(image, 1 - current, (h) => (h[100] = 0x5a), false)
      await assertCode(readVhdxLayout(image), 'VHDX_CORRUPT', /checksum/)
    })

    it('refuses a region table with a bad CRC', async () => {
      for (const offset of [192 * KiB, 256 * KiB]) await patch(image, offset + 16 + 24, Buffer.from([0x01]))
      await assertCode(readVhdxLayout(image), 'VHDX_CORRUPT', /region table/)
    })

    it('refuses a BAT entry that points beyond the end of the file', async () => {
      const entry = Buffer.alloc(8)
      entry.writeBigUInt64LE(((1n << 40n) << 20n) | 6n)
      await patch(image, layout.regions.bat.offset, entry)
      await assertCode(readVhdxLayout(image), 'VHDX_CORRUPT', /outside the file/)
    })

    it('refuses PARTIALLY_PRESENT blocks in a disk without parent', async () => {
      const entry = Buffer.alloc(8)
      entry.writeBigUInt64LE((4n << 20n) | 7n)
      await patch(image, layout.regions.bat.offset, entry)
      await assertCode(readVhdxLayout(image), 'VHDX_CORRUPT', /PARTIALLY_PRESENT/)
    })

    it('refuses absurd sizes', async () => {
      const meta = layout.regions.metadata.offset
      const sizeEntry = await metadataEntry(image, meta, VHDX_GUIDS.virtualDiskSize)
      const sizeItem = meta + (await readRange(image, sizeEntry + 16, 4)).readUInt32LE(0)
      const huge = Buffer.alloc(8)
      huge.writeBigUInt64LE(65n << 40n) // 65 TiB
      await patch(image, sizeItem, huge)
      await assertCode(readVhdxLayout(image), 'VHDX_CORRUPT', /64 TiB/)

      const fresh = makeVhdx(join(tmp.dir, 'b.vhdx'), 1 * MiB)
      const freshMeta = (await readVhdxLayout(fresh)).regions.metadata.offset
      const paramsEntry = await metadataEntry(fresh, freshMeta, VHDX_GUIDS.fileParameters)
      const paramsItem = freshMeta + (await readRange(fresh, paramsEntry + 16, 4)).readUInt32LE(0)
      const block = Buffer.alloc(4)
      block.writeUInt32LE(3 * MiB)
      await patch(fresh, paramsItem, block)
      await assertCode(readVhdxLayout(fresh), 'VHDX_CORRUPT', /block size/)
    })

    it('refuses a metadata item outside the metadata region', async () => {
      const entry = await metadataEntry(image, layout.regions.metadata.offset, VHDX_GUIDS.logicalSectorSize)
      const offset = Buffer.alloc(4)
      offset.writeUInt32LE(layout.regions.metadata.length - 2)
      await patch(image, entry + 16, offset)
      await assertCode(readVhdxLayout(image), 'VHDX_CORRUPT', /outside the metadata region/)
    })

    it('refuses unknown required metadata items as unsupported', async () => {
      const entry = await metadataEntry(image, layout.regions.metadata.offset, VHDX_GUIDS.physicalSectorSize)
      await patch(image, entry, parseGuid('01234567-89AB-CDEF-0123-456789ABCDEF'))
      await patch(image, entry + 24, Buffer.from([4, 0, 0, 0]))
      await assertCode(readVhdxLayout(image), 'VHDX_UNSUPPORTED', /required metadata/)
    })

    it('refuses a file whose log must be replayed', async () => {
      for (const i of [0, 1]) await patchHeader(image, i, (h) => randomBytes(16).copy(h, 48))
      await assertCode(readVhdxLayout(image), 'VHDX_UNSUPPORTED', /replay/)
    })

    it('refuses a child whose partially present blocks lack their sector bitmap', async () => {
      const template = makeVhdx(join(tmp.dir, 'template.vhdx'), 1 * MiB)
      const child = join(tmp.dir, 'child.avhdx')
      await makeDifferencingVhdx({
        template,
        out: child,
        parentRelativePath: 'p.vhdx',
        writes: [{offset: 4096, data: Buffer.alloc(4096, 1)}],
      })
      const childLayout = await readVhdxLayout(child)
      assert.equal(childLayout.blockCounts.partiallyPresent, 1)
      const sbEntry = childLayout.regions.bat.offset + childLayout.chunkRatio * 8
      await patch(child, sbEntry, Buffer.alloc(8))
      await assertCode(readVhdxLayout(child), 'VHDX_CORRUPT', /sector bitmap/)
    })
  })
})
