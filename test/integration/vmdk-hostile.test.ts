import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, writeSync} from 'node:fs'
import {basename, join} from 'node:path'

import {vmdkLoader} from '../../plugins/vmware/src/vmdk-loader.js'
import type {JobSettings} from '@hyper2kvm/plugin-api'
import {loadWith, probeInputFor} from '../helpers/loader-harness.js'
import {convertFixture, makePatternedRaw} from '../helpers/patterned-image.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {makeFooterStream, sha256, truncateTo, writeDescriptor} from '../helpers/vmdk-fixtures.js'

const SECTORS_64M = 131072

/** sha256 of every regular file under `dir` (symlinks by their target text): proves nothing was written. */
function snapshot(dir: string): Record<string, string> {
  const result: Record<string, string> = {}
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    const info = lstatSync(path)
    if (info.isDirectory()) Object.assign(result, snapshot(path))
    else if (info.isFile()) result[path] = sha256(path)
    else result[path] = `link ${info.size}`
  }
  return result
}

/** Sectors of the first and last grain a qemu-written stream stores (from its grain tables). */
function compressedGrainSectors(path: string): {first: number; last: number} {
  const data = readFileSync(path)
  const gtes = Number(data.readUInt32LE(44))
  const gd = Number(data.readBigUInt64LE(56)) * 512
  const tables = Math.ceil(Number(data.readBigUInt64LE(12)) / (Number(data.readBigUInt64LE(20)) * gtes))
  const grains: number[] = []
  for (let t = 0; t < tables; t++) {
    const table = data.readUInt32LE(gd + t * 4) * 512
    for (let e = 0; table > 0 && e < gtes; e++) {
      const sector = data.readUInt32LE(table + e * 4)
      if (sector > 1) grains.push(sector)
    }
  }
  return {first: Math.min(...grains), last: Math.max(...grains)}
}

function patch(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+')
  try {
    writeSync(fd, bytes, 0, bytes.length, offset)
  } finally {
    closeSync(fd)
  }
}

describe('VMware VMDK loader: hostile and damaged inputs', function () {
  let root: string
  let cleanup: () => void
  let raw: string

  before(() => {
    ;({cleanup, dir: root} = makeTempDir('h2k-vmdk-hostile-'))
    raw = makePatternedRaw(join(root, 'expected.raw'))
  })
  after(() => cleanup())

  let counter = 0
  function folder(name: string): string {
    const dir = join(root, `${++counter}-${name}`)
    mkdirSync(dir, {recursive: true})
    return dir
  }

  /** The load fails with `code` (and `message`), and no file under `watch` changed. */
  async function refuses(path: string, code: string, {message, settings = {}, watch}: {message?: RegExp; settings?: Partial<JobSettings>; watch: string}): Promise<void> {
    const before = snapshot(watch)
    await assert.rejects(loadWith(vmdkLoader, path, settings), (error: {code?: string; message: string}) => {
      assert.equal(error.code, code, error.message)
      if (message) assert.match(error.message, message)
      return true
    })
    assert.deepEqual(snapshot(watch), before, 'the input files are unchanged')
  }

  function sparse(dir: string, name = 'disk.vmdk', subformat = 'monolithicSparse'): string {
    return convertFixture(raw, join(dir, name), 'vmdk', [`subformat=${subformat}`])
  }

  describe('not claimed', () => {
    it('a text file named .vmdk', async () => {
      const path = join(folder('text'), 'notes.vmdk')
      writeFileSync(path, 'These are my notes about the VM.\nNothing else here.\n')
      assert.equal(await vmdkLoader.probe(await probeInputFor(path)), null)
    })

    it('a -flat.vmdk that no descriptor names', async () => {
      const dir = folder('orphan-flat')
      execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'lost-flat.vmdk'), '1M'])
      writeDescriptor(join(dir, 'other.vmdk'), 'vmfs', [`RW 2048 VMFS "other-flat.vmdk"`])
      assert.equal(await vmdkLoader.probe(await probeInputFor(join(dir, 'lost-flat.vmdk'))), null)
    })
  })

  describe('damaged sparse files (qemu-img would convert them into silent zeros)', () => {
    it('a truncated monolithicSparse', async () => {
      const dir = folder('trunc-sparse')
      const disk = sparse(dir)
      truncateTo(disk, Math.floor(statSync(disk).size * 0.6))
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /disk\.vmdk: .*truncated/, watch: dir})
    })

    it('a monolithicSparse missing only its last sector', async () => {
      const dir = folder('trunc-sparse-1')
      const disk = sparse(dir)
      truncateTo(disk, statSync(disk).size - 512)
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /grain .* beyond the end of the file/, watch: dir})
    })

    it('a truncated streamOptimized (qemu layout)', async () => {
      const dir = folder('trunc-stream')
      const disk = sparse(dir, 'disk.vmdk', 'streamOptimized')
      // qemu puts 128 sectors of metadata first and pads the end with zeros, so cutting a fixed share of
      // the file may only cut padding (which we rightly accept): cut right after the first grains instead.
      const {first, last} = compressedGrainSectors(disk)
      assert.ok(last > first + 10)
      truncateTo(disk, (first + 4) * 512)
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /truncated/, watch: dir})
    })

    it('a streamOptimized whose last compressed grain is cut short', async () => {
      const dir = folder('trunc-stream-last')
      const disk = sparse(dir, 'disk.vmdk', 'streamOptimized')
      truncateTo(disk, compressedGrainSectors(disk).last * 512 + 40)
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /last compressed grain/, watch: dir})
    })

    it('a streamOptimized cut before its footer and end-of-stream marker (VMware layout)', async () => {
      const dir = folder('trunc-footer')
      const disk = makeFooterStream(sparse(dir, 'disk.vmdk', 'streamOptimized'))
      truncateTo(disk, statSync(disk).size - 1024)
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /end-of-stream marker/, watch: dir})
    })

    it('a streamOptimized cut in the middle (VMware layout)', async () => {
      const dir = folder('trunc-footer-mid')
      const disk = makeFooterStream(sparse(dir, 'disk.vmdk', 'streamOptimized'))
      truncateTo(disk, Math.floor(statSync(disk).size / 2 / 512) * 512)
      await refuses(disk, 'H2K_INPUT_CORRUPT', {watch: dir})
    })

    it('a grain directory pointing past the end of the file', async () => {
      const dir = folder('gd-past-end')
      const disk = sparse(dir)
      const gdSector = Number(execFileSync('od', ['-An', '-tu8', '-j56', '-N8', disk]).toString().trim())
      patch(disk, gdSector * 512, Buffer.from([0xff, 0xff, 0xff, 0x0f]))
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /grain table 0/, watch: dir})
    })

    it('a header altered by a text-mode (ASCII) transfer', async () => {
      const dir = folder('ascii')
      const disk = sparse(dir)
      patch(disk, 73, Buffer.from('\n \n\n', 'latin1'))
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /text \(ASCII\) mode/, watch: dir})
    })

    it('a capacity over 64 TiB', async () => {
      const dir = folder('huge')
      const disk = sparse(dir)
      const capacity = Buffer.alloc(8)
      capacity.writeBigUInt64LE(2n ** 40n)
      patch(disk, 12, capacity)
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /64 TiB/, watch: dir})
    })

    it('a sparse header of capacity 0 (qemu would follow its embedded extent names)', async () => {
      const dir = folder('capacity-0')
      const disk = sparse(dir)
      patch(disk, 12, Buffer.alloc(8))
      await refuses(disk, 'H2K_INPUT_UNSUPPORTED', {message: /capacity 0/, watch: dir})
    })
  })

  describe('extent names that leave the folder', () => {
    let outside: string
    before(() => {
      outside = folder('outside')
      execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(outside, 'secret-flat.vmdk'), '64M'])
    })

    it('an absolute path', async () => {
      const dir = folder('abs')
      const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'monolithicFlat', [`RW ${SECTORS_64M} FLAT "${join(outside, 'secret-flat.vmdk')}" 0`])
      await refuses(disk, 'H2K_UNSAFE_PATH', {message: /absolute path/, watch: root})
    })

    it('a path with ".."', async () => {
      const dir = folder('dotdot')
      const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'monolithicFlat', [`RW ${SECTORS_64M} FLAT "../${basename(outside)}/secret-flat.vmdk" 0`])
      await refuses(disk, 'H2K_UNSAFE_PATH', {message: /"\.\."/, watch: root})
    })

    it('a symlink that points outside the folder', async () => {
      const dir = folder('symlink')
      symlinkSync(join(outside, 'secret-flat.vmdk'), join(dir, 'disk-flat.vmdk'))
      const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'vmfs', [`RW ${SECTORS_64M} VMFS "disk-flat.vmdk"`])
      await refuses(disk, 'H2K_UNSAFE_PATH', {message: /symlink/, watch: root})
    })

    it('a URL', async () => {
      const dir = folder('url')
      const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'vmfs', [`RW ${SECTORS_64M} VMFS "https://example.com/disk-flat.vmdk"`])
      await refuses(disk, 'H2K_UNSAFE_PATH', {message: /URL/, watch: root})
    })

    it('a missing extent', async () => {
      const dir = folder('missing')
      const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'twoGbMaxExtentFlat', [`RW 65536 FLAT "disk-f001.vmdk" 0`, `RW 65536 FLAT "disk-f002.vmdk" 0`])
      execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'disk-f001.vmdk'), '32M'])
      await refuses(disk, 'H2K_EXTENT_MISSING', {message: /disk-f002\.vmdk/, watch: dir})
    })

    it('a flat extent shorter than its descriptor says', async () => {
      const dir = folder('short-flat')
      execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'disk-flat.vmdk'), '32M'])
      const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'monolithicFlat', [`RW ${SECTORS_64M} FLAT "disk-flat.vmdk" 0`])
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /truncated/, watch: dir})
    })

    it('a descriptor with a garbage line', async () => {
      const dir = folder('garbage')
      execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'disk-flat.vmdk'), '64M'])
      const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'monolithicFlat', [`RW ${SECTORS_64M} FLAT "disk-flat.vmdk" 0`, 'rm -rf / # not an extent'])
      await refuses(disk, 'H2K_INPUT_CORRUPT', {message: /line/, watch: dir})
    })
  })

  describe('parents', () => {
    it('a parent hint that leaves the folder with ".."', async () => {
      const top = folder('parent-dotdot')
      mkdirSync(join(top, 'base'))
      mkdirSync(join(top, 'vm'))
      sparse(join(top, 'base'), 'base.vmdk')
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', '../base/base.vmdk', '-F', 'vmdk', 'child.vmdk'], {cwd: join(top, 'vm')})
      await refuses(join(top, 'vm', 'child.vmdk'), 'H2K_UNSAFE_BACKING', {message: /parent disk "\.\.\/base\/base\.vmdk"/, watch: top})
    })

    it('an absolute parent hint', async () => {
      const top = folder('parent-abs')
      const base = sparse(top, 'base.vmdk')
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', base, '-F', 'vmdk', 'child.vmdk'], {cwd: top})
      // Even though the parent sits in the same folder, an absolute name is refused, not normalised.
      await refuses(join(top, 'child.vmdk'), 'H2K_UNSAFE_BACKING', {message: /absolute path/, watch: top})
    })

    it('a missing parent', async () => {
      const top = folder('parent-missing')
      sparse(top, 'base.vmdk')
      execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', 'child.vmdk'], {cwd: top})
      execFileSync('mv', [join(top, 'base.vmdk'), join(top, 'renamed.vmdk')])
      await refuses(join(top, 'child.vmdk'), 'H2K_EXTENT_MISSING', {message: /base\.vmdk/, watch: top})
    })

    it('a chain that loops back on itself', async () => {
      const dir = folder('loop')
      for (const name of ['a', 'b']) {
        convertFixture(raw, join(dir, `${name}-s001.vmdk`), 'vmdk', ['subformat=monolithicSparse'])
      }
      writeDescriptor(join(dir, 'a.vmdk'), 'twoGbMaxExtentSparse', [`RW ${SECTORS_64M} SPARSE "a-s001.vmdk"`], {cid: 'aaaaaaaa', extra: ['parentFileNameHint="b.vmdk"'], parentCid: 'bbbbbbbb'})
      writeDescriptor(join(dir, 'b.vmdk'), 'twoGbMaxExtentSparse', [`RW ${SECTORS_64M} SPARSE "b-s001.vmdk"`], {cid: 'bbbbbbbb', extra: ['parentFileNameHint="a.vmdk"'], parentCid: 'aaaaaaaa'})
      await refuses(join(dir, 'a.vmdk'), 'H2K_INPUT_CORRUPT', {message: /loops back to a\.vmdk/, watch: dir})
    })
  })

  describe('variants hyper2kvm refuses with a reason', () => {
    it('an ESXi snapshot delta (vmfsSparse)', async () => {
      const dir = folder('vmfssparse')
      writeFileSync(join(dir, 'web01-000001-delta.vmdk'), Buffer.concat([Buffer.from('COWD'), Buffer.alloc(2044)]))
      const disk = writeDescriptor(join(dir, 'web01-000001.vmdk'), 'vmfsSparse', [`RW ${SECTORS_64M} VMFSSPARSE "web01-000001-delta.vmdk"`], {extra: ['parentFileNameHint="web01.vmdk"']})
      await refuses(disk, 'H2K_INPUT_UNSUPPORTED', {message: /snapshot delta/, watch: dir})
      // Pointing at the delta extent finds the same descriptor and the same answer.
      assert.deepEqual(await vmdkLoader.probe(await probeInputFor(join(dir, 'web01-000001-delta.vmdk'))), {by: 'content', format: 'vmdk', subformat: 'vmfsSparse'})
      await refuses(join(dir, 'web01-000001-delta.vmdk'), 'H2K_INPUT_UNSUPPORTED', {message: /snapshot delta/, watch: dir})
    })

    it('a raw device mapping', async () => {
      const dir = folder('rdm')
      writeFileSync(join(dir, 'db-rdmp.vmdk'), Buffer.alloc(512))
      const disk = writeDescriptor(join(dir, 'db.vmdk'), 'vmfsPassthroughRawDeviceMap', [`RW 2147483648 VMFSRDM "db-rdmp.vmdk"`])
      await refuses(disk, 'H2K_INPUT_UNSUPPORTED', {message: /raw device mapping/, watch: dir})
    })

    it('a ZERO extent (qemu would silently drop it and shift the disk)', async () => {
      const dir = folder('zero')
      execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'disk-f001.vmdk'), '32M'])
      const disk = writeDescriptor(join(dir, 'disk.vmdk'), 'twoGbMaxExtentFlat', [`RW 65536 ZERO`, `RW 65536 FLAT "disk-f001.vmdk" 0`])
      await refuses(disk, 'H2K_INPUT_UNSUPPORTED', {message: /ZERO extent/, watch: dir})
    })
  })
})
