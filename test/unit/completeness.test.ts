import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {closeSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {ClaimGate} from '../../src/daemon/claim-gate.js'
import {bufferSource} from '../../src/daemon/completeness/byte-source.js'
import {completenessOf, fileCompleteness} from '../../src/daemon/completeness/file-completeness.js'
import {flatExtentsCompleteness} from '../../src/daemon/completeness/flat-extents.js'
import {loadDaemonConfig} from '../../src/daemon/config.js'
import {OpenFileTable} from '../../src/daemon/open-writers.js'
import {craftHeader, craftTar} from '../helpers/tar-craft.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {makeFooterStream} from '../helpers/vmdk-fixtures.js'

/**
 * The completeness checks (src/daemon/completeness/) over byte buffers: real images written by qemu-img,
 * the same cut short, and crafted or damaged ones. A damaged file is "complete" for these checks (the
 * loader refuses it with a reason); only what a cut copy lacks makes one "incomplete".
 */
describe('daemon: completeness of formats that carry their own end', function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void
  const images = new Map<string, Buffer>()

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-completeness-'))
    const raw = join(dir, 'source.raw')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, '24M'])
    const writes = [['0x11', '0', '1M'], ['0x22', '9M', '2M'], ['0x33', '23M', '1M']].flatMap(([p, o, l]) => ['-c', `write -P ${p} ${o} ${l}`])
    execFileSync('qemu-io', ['-f', 'raw', ...writes, raw], {stdio: 'pipe'})
    const convert = (name: string, format: string, options: string[] = []): void => {
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', format, ...(options.length > 0 ? ['-o', options.join(',')] : []), raw, join(dir, name)])
      images.set(name, readFileSync(join(dir, name)))
    }
    convert('qemu-stream.vmdk', 'vmdk', ['subformat=streamOptimized'])
    convert('footer-stream.vmdk', 'vmdk', ['subformat=streamOptimized'])
    images.set('footer-stream.vmdk', readFileSync(makeFooterStream(join(dir, 'footer-stream.vmdk'))))
    convert('sparse.vmdk', 'vmdk')
    convert('dynamic.vhd', 'vpc')
    convert('fixed.vhd', 'vpc', ['subformat=fixed'])
    convert('disk.vhdx', 'vhdx')
    convert('disk.qcow2', 'qcow2')
    convert('external.qcow2', 'qcow2', [`data_file=${join(dir, 'external.data')}`])
    execFileSync('qemu-img', ['convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', raw, join(dir, 'compressed.qcow2')])
    images.set('compressed.qcow2', readFileSync(join(dir, 'compressed.qcow2')))
  })
  after(() => cleanup())

  const image = (name: string): Buffer => images.get(name)!
  const cut = (name: string, length: number): Buffer => image(name).subarray(0, length < 0 ? image(name).length + length : length)
  const half = (name: string): Buffer => cut(name, Math.floor(image(name).length / 2))
  const overwrite = (bytes: Buffer, at: number, fill: Buffer): Buffer => {
    const copy = Buffer.from(bytes)
    fill.copy(copy, at)
    return copy
  }
  /** Offset of the last non-zero byte. */
  const lastByte = (bytes: Buffer): number => {
    let at = bytes.length - 1
    while (at > 0 && bytes[at] === 0) at--
    return at
  }
  const manifest = (names: string[]): Buffer => Buffer.from(names.map((n) => `SHA256(${n})= ${'ab'.repeat(32)}\n`).join(''))
  const disk = Buffer.alloc(3000, 0x5a)

  const cases: Array<{what: string; name: string; bytes: () => Buffer; complete: boolean}> = [
    // streamOptimized VMDK as qemu writes it: tables at the front, grains after.
    {bytes: () => image('qemu-stream.vmdk'), complete: true, name: 'qemu-stream.vmdk', what: 'qemu stream, whole'},
    {bytes: () => half('qemu-stream.vmdk'), complete: false, name: 'qemu-stream.vmdk', what: 'qemu stream, cut in half'},
    {bytes: () => cut('qemu-stream.vmdk', lastByte(image('qemu-stream.vmdk'))), complete: false, name: 'qemu-stream.vmdk', what: 'qemu stream, the last byte of its last grain missing'},
    {bytes: () => cut('qemu-stream.vmdk', -512), complete: true, name: 'qemu-stream.vmdk', what: 'qemu stream without its trailing zero padding (nothing of the disk missing)'},
    {bytes: () => cut('qemu-stream.vmdk', 300), complete: false, name: 'qemu-stream.vmdk', what: 'qemu stream, inside the header'},
    // streamOptimized VMDK as VMware writes it: GD_AT_END, footer marker, footer, end-of-stream marker.
    {bytes: () => image('footer-stream.vmdk'), complete: true, name: 'footer-stream.vmdk', what: 'footer stream, whole'},
    {bytes: () => cut('footer-stream.vmdk', -512), complete: false, name: 'footer-stream.vmdk', what: 'footer stream without its end-of-stream marker'},
    {bytes: () => cut('footer-stream.vmdk', -1024), complete: false, name: 'footer-stream.vmdk', what: 'footer stream cut inside the footer'},
    {bytes: () => half('footer-stream.vmdk'), complete: false, name: 'footer-stream.vmdk', what: 'footer stream cut in half'},
    {
      bytes: () => overwrite(image('footer-stream.vmdk'), image('footer-stream.vmdk').length - 1024, Buffer.alloc(512)),
      complete: false,
      name: 'footer-stream.vmdk',
      what: 'footer stream: end marker present, footer zeroed (written with holes)',
    },
    {bytes: () => image('sparse.vmdk'), complete: true, name: 'sparse.vmdk', what: 'monolithicSparse, whole'},
    {bytes: () => half('sparse.vmdk'), complete: false, name: 'sparse.vmdk', what: 'monolithicSparse, cut in half'},
    {bytes: () => Buffer.concat([Buffer.from('KDMV'), Buffer.alloc(4092)]), complete: true, name: 'garbage.vmdk', what: 'KDMV and zeros: damage, left to the loader'},
    // VHD: the footer at the end.
    {bytes: () => image('dynamic.vhd'), complete: true, name: 'dynamic.vhd', what: 'dynamic VHD, whole'},
    {bytes: () => cut('dynamic.vhd', -512), complete: false, name: 'dynamic.vhd', what: 'dynamic VHD without its footer'},
    {bytes: () => image('fixed.vhd'), complete: true, name: 'fixed.vhd', what: 'fixed VHD, whole'},
    {bytes: () => half('fixed.vhd'), complete: false, name: 'fixed.vhd', what: 'fixed VHD cut in half (no head magic: known by its name)'},
    {bytes: () => Buffer.alloc(100), complete: false, name: 'tiny.vhd', what: 'a .vhd smaller than a footer'},
    // VHDX: headers/region table, regions, BAT blocks.
    {bytes: () => image('disk.vhdx'), complete: true, name: 'disk.vhdx', what: 'VHDX, whole'},
    {bytes: () => cut('disk.vhdx', 512 * 1024), complete: false, name: 'disk.vhdx', what: 'VHDX cut inside its first MiB'},
    {bytes: () => cut('disk.vhdx', 3 * 1024 * 1024), complete: false, name: 'disk.vhdx', what: 'VHDX cut before its regions end'},
    {bytes: () => cut('disk.vhdx', -1024 * 1024), complete: false, name: 'disk.vhdx', what: 'VHDX without its last payload block'},
    {bytes: () => Buffer.concat([Buffer.from('vhdxfile'), Buffer.alloc(2 * 1024 * 1024)]), complete: true, name: 'garbage.vhdx', what: 'vhdxfile and zeros: damage, left to the loader'},
    // qcow2: tables, L2 tables and the last data cluster.
    {bytes: () => image('disk.qcow2'), complete: true, name: 'disk.qcow2', what: 'qcow2, whole'},
    {bytes: () => half('disk.qcow2'), complete: false, name: 'disk.qcow2', what: 'qcow2 cut in half'},
    {bytes: () => cut('disk.qcow2', -65536), complete: false, name: 'disk.qcow2', what: 'qcow2 without its last cluster'},
    {bytes: () => cut('disk.qcow2', 40), complete: false, name: 'disk.qcow2', what: 'qcow2 cut inside its header'},
    {bytes: () => image('external.qcow2'), complete: true, name: 'external.qcow2', what: 'qcow2 whose data clusters are in an external data file (the loader decides on it)'},
    {bytes: () => image('compressed.qcow2'), complete: true, name: 'compressed.qcow2', what: 'compressed qcow2, whole'},
    {bytes: () => cut('compressed.qcow2', -4096), complete: false, name: 'compressed.qcow2', what: 'compressed qcow2 without its last compressed cluster'},
    {bytes: () => overwrite(cut('disk.qcow2', 4096), 4, Buffer.from([0, 0, 0, 9])), complete: true, name: 'garbage.qcow2', what: 'qcow2 version 9: damage, left to the loader'},
    // tar (OVA): end-of-archive blocks, members, the manifest's files.
    {bytes: () => craftTar([{data: Buffer.from('<ovf/>'), name: 'vm.ovf'}, {data: disk, name: 'vm-disk1.vmdk'}]), complete: true, name: 'vm.ova', what: 'tar, whole'},
    {bytes: () => craftTar([{data: Buffer.from('<ovf/>'), name: 'vm.ovf'}, {data: disk, name: 'vm-disk1.vmdk'}], {withoutEnd: true}), complete: false, name: 'vm.ova', what: 'tar without end blocks'},
    {bytes: () => craftTar([{data: Buffer.from('<ovf/>'), name: 'vm.ovf'}]).subarray(0, 1536), complete: false, name: 'vm.ova', what: 'tar with only one end block'},
    {bytes: () => craftTar([{data: Buffer.from('<ovf/>'), name: 'vm.ovf'}, {data: disk, name: 'vm-disk1.vmdk'}]).subarray(0, 2500), complete: false, name: 'vm.ova', what: 'tar cut inside a member'},
    {bytes: () => craftTar([{data: Buffer.from('<ovf/>'), name: 'vm.ovf'}]).subarray(0, 300), complete: false, name: 'vm.ova', what: 'tar cut inside the first header'},
    {
      bytes: () => craftTar([{data: Buffer.from('<ovf/>'), name: 'vm.ovf'}, {data: manifest(['vm.ovf', 'vm-disk1.vmdk']), name: 'vm.mf'}, {data: disk, name: 'vm-disk1.vmdk'}]),
      complete: true,
      name: 'vm.ova',
      what: 'tar with a manifest whose files are all members',
    },
    {
      bytes: () => craftTar([{data: Buffer.from('<ovf/>'), name: 'vm.ovf'}, {data: manifest(['vm.ovf', 'vm-disk1.vmdk']), name: 'vm.mf'}]),
      complete: false,
      name: 'vm.ova',
      what: 'tar ending (zero blocks, e.g. a hole) before a file its manifest lists',
    },
    {
      bytes: () => Buffer.concat([craftHeader({data: disk, name: 'vm-disk1.vmdk', badChecksum: true}), disk, Buffer.alloc(1024)]),
      complete: true,
      name: 'vm.ova',
      what: 'tar with a bad header checksum: damage, left to the loader',
    },
    // No format that says where it ends.
    {bytes: () => Buffer.alloc(4096, 0x42), complete: true, name: 'disk.raw', what: 'raw: nothing to check'},
  ]

  for (const c of cases) {
    it(`${c.what}: ${c.complete ? 'complete' : 'incomplete'}`, async () => {
      const result = await completenessOf(bufferSource(c.bytes()), c.name)
      assert.equal(result.complete, c.complete, JSON.stringify(result))
      if (!result.complete) assert.ok(result.reason.length > 0)
    })
  }

  it('a text descriptor: its flat extents must be as long as it declares (offset + sectors); others are not its business', () => {
    const descriptor = Buffer.from('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 2048 FLAT "d-flat.vmdk" 0\nRW 2048 FLAT "d-flat2.vmdk" 8\n')
    const sizes = (flat: number | undefined, flat2: number | undefined) => (name: string) => ({'d-flat.vmdk': flat, 'd-flat2.vmdk': flat2})[name]
    assert.equal(flatExtentsCompleteness(descriptor, sizes(2048 * 512, 2056 * 512)).complete, true)
    assert.equal(flatExtentsCompleteness(descriptor, sizes(2048 * 512, 4096 * 512)).complete, true, 'longer is fine')
    assert.equal(flatExtentsCompleteness(descriptor, sizes(2048 * 512 - 1, 2056 * 512)).complete, false)
    assert.equal(flatExtentsCompleteness(descriptor, sizes(2048 * 512, 2048 * 512)).complete, false, 'the offset counts')
    assert.equal(flatExtentsCompleteness(descriptor, sizes(undefined, undefined)).complete, true, 'absent extents are the intake\'s business')
    assert.equal(flatExtentsCompleteness(Buffer.from('createType="x"\nRW 10 BOGUS\n'), sizes(0, 0)).complete, true, 'a damaged descriptor is the loader\'s business')
    assert.equal(flatExtentsCompleteness(Buffer.alloc(512, 0x41), sizes(0, 0)).complete, true, 'not a descriptor')
  })

  it('judges a file in place; neither a FIFO (without blocking) nor a symlink is judged', async () => {
    const file = join(dir, 'half.qcow2')
    writeFileSync(file, half('disk.qcow2'))
    assert.equal((await fileCompleteness(file, 'half.qcow2')).complete, false)
    const fifo = join(dir, 'pipe.vhd')
    execFileSync('mkfifo', [fifo])
    assert.equal((await fileCompleteness(fifo, 'pipe.vhd')).complete, true)
    const link = join(dir, 'link.qcow2')
    symlinkSync(file, link)
    assert.equal((await fileCompleteness(link, 'link.qcow2')).complete, true)
  })
})

describe('daemon: who holds a file open for writing (/proc)', function () {
  this.timeout(30_000)
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir('h2k-writers-')))
  after(() => cleanup())

  const writersOf = async (path: string): Promise<number[]> => {
    const info = statSync(path, {bigint: true})
    return (await OpenFileTable.scan()).writers(info.dev, info.ino)
  }

  it('finds a writer by device and inode (any path), ignores readers and closed files', async () => {
    const file = join(dir, 'disk.raw')
    writeFileSync(file, 'x')
    assert.deepEqual(await writersOf(file), [])
    const reader = openSync(file, 'r')
    assert.deepEqual(await writersOf(file), [], 'a reader is no writer')
    const writer = openSync(file, 'r+')
    assert.deepEqual(await writersOf(file), [process.pid])
    // The same inode by another name: still held.
    mkdirSync(join(dir, 'sub'))
    execFileSync('ln', [file, join(dir, 'sub', 'other-name.raw')])
    assert.deepEqual(await writersOf(join(dir, 'sub', 'other-name.raw')), [process.pid])
    closeSync(writer)
    closeSync(reader)
    assert.deepEqual(await writersOf(file), [])
  })

  it('finds another process writing (O_WRONLY, as cp or smbd)', async () => {
    const file = join(dir, 'upload.raw')
    const child = spawn('sh', ['-c', 'exec 3>"$1"; echo ready; read line', 'sh', file], {stdio: ['pipe', 'pipe', 'inherit']})
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()))
    try {
      assert.deepEqual(await writersOf(file), [child.pid])
    } finally {
      child.stdin!.end('done\n')
      await new Promise((resolve) => child.on('exit', resolve))
    }
    assert.deepEqual(await writersOf(file), [])
  })
})

describe('daemon: the claim gate', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir('h2k-gate-')))
  after(() => cleanup())

  it('holds a file open for writing or incomplete, logs each wait once and warns once after file_stable_timeout, then admits it', async () => {
    const lines: string[] = []
    // Long while the first waits are logged (a loaded machine may take 200 ms over them), short once the warning is due.
    let timeoutS = 60
    const gate = new ClaimGate(() => ({inbox: dir, intervalMs: 0, timeoutS}), (level, event, fields) => lines.push(`${level} ${event} ${JSON.stringify(fields)}`))
    const file = join(dir, 'disk.vhd')
    const footer = Buffer.alloc(512)
    footer.write('conectix')
    writeFileSync(file, Buffer.alloc(4096))
    const fd = openSync(file, 'r+')
    const seen = Date.now()
    assert.equal(await gate.admit(['disk.vhd'], seen), false)
    assert.equal(await gate.admit(['disk.vhd'], seen), false)
    assert.deepEqual(lines, [`info file:open-for-writing {"file":"disk.vhd","writers":"${process.pid}"}`])
    closeSync(fd)
    assert.equal(await gate.admit(['disk.vhd'], seen), false, 'a .vhd without its footer is incomplete')
    timeoutS = 0.2
    await new Promise((resolve) => setTimeout(resolve, 250))
    assert.equal(await gate.admit(['disk.vhd'], seen), false)
    assert.deepEqual(lines.slice(1), [
      'info file:incomplete {"file":"disk.vhd","reason":"the VHD has no footer at its end yet"}',
      'warn file:still-incomplete {"file":"disk.vhd","reason":"the VHD has no footer at its end yet"}',
    ])
    writeFileSync(file, Buffer.concat([Buffer.alloc(4096), footer]))
    assert.equal(await gate.admit(['disk.vhd', 'not-there.vmdk'], seen), true)
    assert.equal(lines.length, 3)
  })
})

describe('daemon config: the quiet period', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir('h2k-quiet-')))
  after(() => cleanup())

  it('file_stable_checks and file_stable_interval (seconds) set it; the seed defaults are 3 checks 1 s apart', async () => {
    const keyed = join(dir, 'keyed.yaml')
    writeFileSync(keyed, 'command: daemon\nwatch_dir: q\noutput_dir: o\nfile_stable_checks: 5\nfile_stable_interval: 2.5\n')
    const config = await loadDaemonConfig({config: keyed})
    assert.equal(config.fileStableChecks, 5)
    assert.equal(config.stabilityIntervalMs, 2500)
    const plain = join(dir, 'plain.yaml')
    writeFileSync(plain, 'command: daemon\nwatch_dir: q\noutput_dir: o\n')
    const defaults = await loadDaemonConfig({config: plain})
    assert.equal(defaults.fileStableChecks, 3)
    assert.equal(defaults.stabilityIntervalMs, 1000)
    assert.equal((await loadDaemonConfig({config: keyed, 'stability-interval': 100})).stabilityIntervalMs, 100, 'the (hidden) flag wins')
  })

  it('refuses a quiet period of no checks', async () => {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'command: daemon\nwatch_dir: q\noutput_dir: o\nfile_stable_checks: 0\n')
    await assert.rejects(loadDaemonConfig({config: bad}), /file_stable_checks/)
  })
})
