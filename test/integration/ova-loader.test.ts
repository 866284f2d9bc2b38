import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {amiLoader} from '../../plugins/aws/src/ami-loader.js'
import {ovaLoader} from '../../plugins/ovf/src/ova-loader.js'
import {ovfLoader} from '../../plugins/ovf/src/ovf-loader.js'
import type {H2KError, LoaderStage, Source} from '@hyper2kvm/plugin-api'
import {convertSpecToRaw, loadWith, probeInputFor} from '../helpers/loader-harness.js'
import {FIXTURE_SIZE, convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {type OvfDiskEntry, SECOND_REGIONS, manifestFor, ovfText} from '../helpers/ovf-fixtures.js'

/** sha256 of a file, or of every file of a directory: what must not change when a loader reads the input. */
function fingerprint(input: string): string {
  if (!statSync(input).isDirectory()) return sha256(input)
  return readdirSync(input)
    .sort()
    .map((name) => `${name}:${statSync(join(input, name)).isFile() ? sha256(join(input, name)) : '-'}`)
    .join(',')
}

const code = (expected: string, mentions?: string) => (error: H2KError) => {
  assert.equal(error.code, expected, error.message)
  if (mentions !== undefined) assert.ok(error.message.includes(mentions), `"${error.message}" should mention ${mentions}`)
  return true
}

describe('OVA, OVF and AMI loaders', () => {
  let dir: string
  let cleanup: () => void
  let raw1: string
  let raw2: string
  /** The OVF directory: web01.ovf, two streamOptimized disks, web01.mf (SHA256). */
  let vmDir: string
  const disks = [
    {href: 'web01-disk1.vmdk', id: 'vmdisk1'},
    {href: 'web01-disk2.vmdk', id: 'vmdisk2'},
  ]

  before(() => {
    ;({cleanup, dir} = makeTempDir())
    raw1 = makePatternedRaw(join(dir, 'disk1.raw'))
    raw2 = makePatternedRaw(join(dir, 'disk2.raw'), FIXTURE_SIZE, SECOND_REGIONS)
    vmDir = join(dir, 'web01')
    mkdirSync(vmDir)
    convertFixture(raw1, join(vmDir, 'web01-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    convertFixture(raw2, join(vmDir, 'web01-disk2.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    writeFileSync(join(vmDir, 'web01.ovf'), ovfText('web01', disks))
    writeFileSync(join(vmDir, 'web01.mf'), manifestFor(vmDir, ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk'], 'SHA256'))
  })
  after(() => cleanup())

  /** Tar the given files of `from` in OVA order (ustar, as ovftool writes). */
  function makeTar(name: string, files: string[], from = vmDir, extra: string[] = []): string {
    const path = join(dir, name)
    execFileSync('tar', ['--format=ustar', ...extra, '-cf', path, ...files], {cwd: from})
    return path
  }

  async function loadAndCompare(loader: LoaderStage, input: string, expected: string[]): Promise<Source> {
    const before = fingerprint(input)
    const {cleanup: done, source} = await loadWith(loader, input)
    try {
      assert.equal(source.disks.length, expected.length)
      for (const [index, disk] of source.disks.entries()) {
        const out = convertSpecToRaw(disk.spec, join(dir, `out-${loader.name}-${index}.raw`))
        assert.ok(sameContent(out, 'raw', expected[index] as string, 'raw'), `disk ${index} of ${input} differs from ${expected[index]}`)
      }
    } finally {
      done()
    }
    assert.equal(fingerprint(input), before, 'the input must not change')
    return source
  }

  async function refuse(loader: LoaderStage, input: string, check: (error: H2KError) => boolean): Promise<void> {
    const before = fingerprint(input)
    await assert.rejects(loadWith(loader, input), check)
    assert.equal(fingerprint(input), before, 'the input must not change')
  }

  it('reads an OVA in place: two streamOptimized disks in bus order, VM hardware, SHA256 manifest', async () => {
    const ova = makeTar('web01.ova', ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk', 'web01.mf'])
    assert.deepEqual(await ovaLoader.probe(await probeInputFor(ova)), {by: 'content', format: 'ova'})
    const source = await loadAndCompare(ovaLoader, ova, [raw1, raw2])
    assert.equal(source.name, 'web01')
    assert.equal(source.format, 'ova')
    assert.deepEqual(source.vm, {
      cpus: 2,
      diskOrder: ['vmdisk1', 'vmdisk2'],
      firmware: 'efi',
      memoryMiB: 4096,
      name: 'web01',
      nics: [{model: 'VmxNet3', name: 'Network adapter 1', network: 'VM Network'}],
      os: 'Ubuntu Linux (64-bit)',
    })
    const [first] = source.disks
    assert.equal(first?.format, 'vmdk')
    assert.equal(first?.subformat, 'streamOptimized')
    assert.equal(first?.label, 'vmdisk1')
    assert.deepEqual(first?.files, [ova])
    assert.equal(first?.allocatedBytes, statSync(join(vmDir, 'web01-disk1.vmdk')).size)
    const spec = first?.spec as {driver: string; backing: null; file: {driver: string; offset: number; size: number; file: {filename: string}}}
    assert.equal(spec.driver, 'vmdk')
    assert.equal(spec.backing, null)
    assert.equal(spec.file.driver, 'raw')
    assert.equal(spec.file.file.filename, ova)
    assert.ok(source.notes?.some((note) => /verified: 3 SHA256/.test(note)), String(source.notes))
  })

  it('verifies a SHA1 manifest', async () => {
    const sha1Dir = join(dir, 'sha1')
    mkdirSync(sha1Dir)
    for (const file of ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk']) copyFileSync(join(vmDir, file), join(sha1Dir, file))
    writeFileSync(join(sha1Dir, 'web01.mf'), manifestFor(sha1Dir, ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk'], 'SHA1'))
    const source = await loadAndCompare(ovaLoader, makeTar('web01-sha1.ova', ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk', 'web01.mf'], sha1Dir), [raw1, raw2])
    assert.ok(source.notes?.some((note) => /verified: 3 SHA1/.test(note)))
  })

  it('reads a gzip-compressed OVA, decompressed once into the work dir', async () => {
    const ova = makeTar('web01-for-gz.ova', ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk', 'web01.mf'])
    const gz = join(dir, 'web01-gz.ova')
    writeFileSync(gz, execFileSync('gzip', ['-c', ova], {maxBuffer: 1024 * 1024 * 1024}))
    assert.deepEqual(await ovaLoader.probe(await probeInputFor(gz)), {by: 'content', format: 'ova', subformat: 'gzip'})
    const before = sha256(gz)
    const {cleanup: done, source, workDir} = await loadWith(ovaLoader, gz)
    try {
      assert.equal(source.subformat, 'gzip')
      assert.ok(source.disks.every((disk) => disk.files[0]?.startsWith(workDir)))
      for (const [index, disk] of source.disks.entries()) {
        const out = convertSpecToRaw(disk.spec, join(dir, `gz-${index}.raw`))
        assert.ok(sameContent(out, 'raw', [raw1, raw2][index] as string, 'raw'))
      }
    } finally {
      done()
    }
    assert.equal(sha256(gz), before)
  })

  it('reads an OVF directory and the .ovf file itself, verifying the manifest', async () => {
    assert.deepEqual(await ovfLoader.probe(await probeInputFor(vmDir)), {by: 'content', format: 'ovf'})
    const source = await loadAndCompare(ovfLoader, vmDir, [raw1, raw2])
    assert.equal(source.vm?.firmware, 'efi')
    assert.deepEqual(source.disks[0]?.files, [join(vmDir, 'web01-disk1.vmdk')])
    await loadAndCompare(ovfLoader, join(vmDir, 'web01.ovf'), [raw1, raw2])
    // An OVA carries OVF text 512 bytes in; only the OVA loader may claim it.
    assert.equal(await ovfLoader.probe(await probeInputFor(join(dir, 'web01.ova'))), null)
  })

  it('reads a flat-extent VMDK descriptor in an OVF directory', async () => {
    const flatDir = join(dir, 'flat')
    mkdirSync(flatDir)
    convertFixture(raw1, join(flatDir, 'web01-disk1.vmdk'), 'vmdk', ['subformat=monolithicFlat'])
    writeFileSync(join(flatDir, 'web01.ovf'), ovfText('web01', [disks[0] as OvfDiskEntry]))
    const source = await loadAndCompare(ovfLoader, flatDir, [raw1])
    assert.equal(source.disks[0]?.subformat, 'monolithicFlat')
    assert.ok(source.notes?.some((note) => /no manifest/.test(note)))
  })

  it('reads AMI export tarballs holding a raw disk and a VMDK', async () => {
    writeFileSync(join(dir, 'export-info.json'), '{"ExportTaskId":"export-i-0123"}')
    const rawTar = join(dir, 'export-i-0123.tar')
    execFileSync('tar', ['-cf', rawTar, 'export-info.json', 'disk1.raw'], {cwd: dir})
    assert.deepEqual(await amiLoader.probe(await probeInputFor(rawTar)), {by: 'content', format: 'ami'})
    assert.equal(await ovaLoader.probe(await probeInputFor(rawTar)), null)
    const source = await loadAndCompare(amiLoader, rawTar, [raw1])
    assert.equal(source.name, 'export-i-0123')
    assert.equal(source.disks[0]?.format, 'raw')
    const vmdkTar = makeTar('export-vmdk.tar', ['web01-disk2.vmdk'])
    const vmdkSource = await loadAndCompare(amiLoader, vmdkTar, [raw2])
    assert.equal(vmdkSource.disks[0]?.format, 'vmdk')
    assert.equal(await amiLoader.probe(await probeInputFor(join(dir, 'web01.ova'))), null)
  })

  describe('refusals', () => {
    it('a manifest digest that does not match', async () => {
      const badDir = join(dir, 'badmf')
      mkdirSync(badDir)
      for (const file of ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk']) copyFileSync(join(vmDir, file), join(badDir, file))
      const manifest = readFileSync(join(vmDir, 'web01.mf'), 'utf8').replace(/(web01-disk2\.vmdk\)= )([0-9a-f])/, (_, head: string, digit: string) => head + (digit === '0' ? '1' : '0'))
      writeFileSync(join(badDir, 'web01.mf'), manifest)
      await refuse(ovaLoader, makeTar('badmf.ova', ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk', 'web01.mf'], badDir), code('H2K_MANIFEST_MISMATCH', 'web01-disk2.vmdk'))
      await refuse(ovfLoader, badDir, code('H2K_MANIFEST_MISMATCH', 'web01-disk2.vmdk'))
    })

    it('a manifest listing a file the OVA lacks', async () => {
      const extraDir = join(dir, 'extramf')
      mkdirSync(extraDir)
      for (const file of ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk']) copyFileSync(join(vmDir, file), join(extraDir, file))
      writeFileSync(join(extraDir, 'web01.mf'), `${readFileSync(join(vmDir, 'web01.mf'), 'utf8')}SHA256(web01-nvram)= ${'0'.repeat(64)}\n`)
      await refuse(ovaLoader, makeTar('extramf.ova', ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk', 'web01.mf'], extraDir), code('H2K_MANIFEST_MISMATCH', 'web01-nvram'))
    })

    it('members named ../evil.vmdk and /abs.vmdk', async () => {
      const inner = join(dir, 'evil', 'inner')
      mkdirSync(inner, {recursive: true})
      copyFileSync(join(vmDir, 'web01-disk1.vmdk'), join(dir, 'evil', 'evil.vmdk'))
      writeFileSync(join(inner, 'web01.ovf'), ovfText('web01', [{href: 'evil.vmdk', id: 'vmdisk1'}]))
      const dotdot = join(dir, 'dotdot.ova')
      execFileSync('tar', ['-cPf', dotdot, 'web01.ovf', '../evil.vmdk'], {cwd: inner})
      await refuse(ovaLoader, dotdot, code('H2K_UNSAFE_ARCHIVE', '../evil.vmdk'))
      const absolute = join(dir, 'absolute.ova')
      execFileSync('tar', ['-cPf', absolute, '--transform', 's,^\\.\\./evil,/abs,', 'web01.ovf', '../evil.vmdk'], {cwd: inner})
      await refuse(ovaLoader, absolute, code('H2K_UNSAFE_ARCHIVE', '/abs.vmdk'))
    })

    it('a symlink member', async () => {
      const linkDir = join(dir, 'linkova')
      mkdirSync(linkDir)
      copyFileSync(join(vmDir, 'web01.ovf'), join(linkDir, 'web01.ovf'))
      symlinkSync('/etc/passwd', join(linkDir, 'web01-disk1.vmdk'))
      await refuse(ovaLoader, makeTar('link.ova', ['web01.ovf', 'web01-disk1.vmdk'], linkDir), code('H2K_UNSAFE_ARCHIVE', 'symbolic link'))
    })

    it('an OVF directory naming ../outside.vmdk', async () => {
      const escapeDir = join(dir, 'escape', 'vm')
      mkdirSync(escapeDir, {recursive: true})
      copyFileSync(join(vmDir, 'web01-disk1.vmdk'), join(dir, 'escape', 'outside.vmdk'))
      writeFileSync(join(escapeDir, 'web01.ovf'), ovfText('web01', [{href: '../outside.vmdk', id: 'vmdisk1'}]))
      await refuse(ovfLoader, escapeDir, code('H2K_UNSAFE_PATH', '../outside.vmdk'))
    })

    it('a truncated OVA, and an OVA whose streamOptimized disk is truncated', async () => {
      const ova = makeTar('cut.ova', ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk', 'web01.mf'])
      truncateSync(ova, Math.floor(statSync(ova).size / 2))
      await refuse(ovaLoader, ova, code('H2K_UNSAFE_ARCHIVE', 'web01-disk'))
      const cutDir = join(dir, 'cutdisk')
      mkdirSync(cutDir)
      copyFileSync(join(vmDir, 'web01.ovf'), join(cutDir, 'web01.ovf'))
      for (const file of ['web01-disk1.vmdk', 'web01-disk2.vmdk']) copyFileSync(join(vmDir, file), join(cutDir, file))
      truncateSync(join(cutDir, 'web01-disk2.vmdk'), Math.floor(statSync(join(cutDir, 'web01-disk2.vmdk')).size / 2))
      await refuse(ovaLoader, makeTar('cutdisk.ova', ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk2.vmdk'], cutDir), code('H2K_INPUT_CORRUPT'))
    })

    it('OVF files stored compressed, and text VMDK descriptors inside an OVA', async () => {
      const gzDir = join(dir, 'filegz')
      mkdirSync(gzDir)
      copyFileSync(join(vmDir, 'web01-disk1.vmdk'), join(gzDir, 'web01-disk1.vmdk'))
      writeFileSync(join(gzDir, 'web01.ovf'), ovfText('web01', [{compression: 'gzip', href: 'web01-disk1.vmdk', id: 'vmdisk1'}]))
      await refuse(ovaLoader, makeTar('filegz.ova', ['web01.ovf', 'web01-disk1.vmdk'], gzDir), code('H2K_INPUT_UNSUPPORTED', 'compressed'))
      const textDir = join(dir, 'textvmdk')
      mkdirSync(textDir)
      convertFixture(raw1, join(textDir, 'web01-disk1.vmdk'), 'vmdk', ['subformat=monolithicFlat'])
      writeFileSync(join(textDir, 'web01.ovf'), ovfText('web01', [disks[0] as OvfDiskEntry]))
      await refuse(ovaLoader, makeTar('textvmdk.ova', ['web01.ovf', 'web01-disk1.vmdk', 'web01-disk1-flat.vmdk'], textDir), code('H2K_INPUT_UNSUPPORTED', 'descriptor'))
    })

    it('an AMI tarball with two disks', async () => {
      const twoTar = join(dir, 'two.tar')
      execFileSync('tar', ['-cf', twoTar, 'disk1.raw', 'disk2.raw'], {cwd: dir})
      await refuse(amiLoader, twoTar, code('H2K_INPUT_UNSUPPORTED', '2 disk images'))
    })
  })
})
