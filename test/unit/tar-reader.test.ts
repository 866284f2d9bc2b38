import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream, existsSync, linkSync, mkdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type H2KError, MAX_TAR_MEMBERS, peekTarNames, scanTar, type TarMember} from '@hyper2kvm/plugin-api'
import {scanGzipTar, scanTarStream} from '@hyper2kvm/plugin-api/host'
import {craftTar} from '../helpers/tar-craft.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')
const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex')

/** The expected data of a member, read back at the offset the scan reported. */
function dataAt(tar: string, member: TarMember): Buffer {
  return readFileSync(tar).subarray(member.offset, member.offset + member.size)
}

function refusal(code: string, mentions?: string) {
  return (error: H2KError) => {
    assert.equal(error.code, code, error.message)
    if (mentions !== undefined) assert.ok(error.message.includes(mentions), `"${error.message}" should name ${mentions}`)
    return true
  }
}

describe('scanTar', () => {
  let dir: string
  let cleanup: () => void
  let content: string
  const longName = `${'long-directory-name-'.repeat(4)}/${'a-very-long-file-name-'.repeat(6)}.vmdk`
  const payload = Buffer.from('x'.repeat(70_000) + 'tail')
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    content = join(dir, 'content')
    mkdirSync(join(content, longName.split('/')[0] as string), {recursive: true})
    writeFileSync(join(content, 'vm.ovf'), '<Envelope/>')
    writeFileSync(join(content, 'disk1.vmdk'), payload)
    writeFileSync(join(content, longName), 'long')
    writeFileSync(join(content, 'empty'), '')
  })
  after(() => cleanup())

  function tarOf(name: string, args: string[], cwd = content): string {
    const path = join(dir, name)
    execFileSync('tar', ['-cf', path, ...args], {cwd})
    return path
  }

  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    it(`indexes a ${format} tar: names (long ones too), offsets, sizes and digests`, async () => {
      // ustar cannot hold a 100+ character name with a 130-character last part; it splits into prefix/name.
      const files = format === 'ustar' ? ['vm.ovf', 'disk1.vmdk', 'empty'] : ['vm.ovf', 'disk1.vmdk', longName, 'empty']
      const tar = tarOf(`t-${format}.tar`, [`--format=${format}`, ...files])
      const members = await scanTar(tar, {hashMembers: (name) => (name === 'disk1.vmdk' ? ['sha1', 'sha256'] : [])})
      assert.deepEqual(
        members.map((member) => member.name),
        files,
      )
      const disk = members.find((member) => member.name === 'disk1.vmdk') as TarMember
      assert.equal(disk.size, payload.length)
      assert.deepEqual(dataAt(tar, disk), payload)
      assert.deepEqual(disk.digests, {sha1: sha1(payload), sha256: sha256(payload)})
      assert.deepEqual(members.find((member) => member.name === 'vm.ovf')?.digests, {})
      if (format !== 'ustar') assert.equal(dataAt(tar, members.find((member) => member.name === longName) as TarMember).toString(), 'long')
    })
  }

  it('reads a ustar name split into prefix and name', async () => {
    const deep = `${'d'.repeat(60)}/${'e'.repeat(60)}/f.img`
    mkdirSync(join(content, 'd'.repeat(60), 'e'.repeat(60)), {recursive: true})
    writeFileSync(join(content, deep), 'deep')
    const tar = tarOf('prefix.tar', ['--format=ustar', deep])
    const [member] = await scanTar(tar)
    assert.equal(member?.name, deep)
    assert.equal(dataAt(tar, member as TarMember).toString(), 'deep')
  })

  it('skips directories and canonicalises "./" names', async () => {
    const tar = tarOf('dot.tar', ['.'])
    const names = (await scanTar(tar)).map((member) => member.name).sort()
    assert.ok(names.includes('disk1.vmdk') && names.includes('vm.ovf'))
    assert.ok(names.every((name) => !name.startsWith('.') && !name.endsWith('/')))
  })

  it('reads a base-256 size field', async () => {
    const data = Buffer.from('base-256 sized member')
    const tar = join(dir, 'b256.tar')
    writeFileSync(tar, craftTar([{base256Size: true, data, name: 'big.raw'}]))
    const [member] = await scanTar(tar, {hashMembers: () => ['sha256']})
    assert.equal(member?.size, data.length)
    assert.equal(member?.digests.sha256, sha256(data))
  })

  it('scans a stream and a gzip file, writing the decompressed tar once', async () => {
    const tar = tarOf('s.tar', ['vm.ovf', 'disk1.vmdk', longName])
    const fromStream = await scanTarStream(createReadStream(tar), {hashMembers: () => ['sha256']})
    assert.deepEqual(fromStream, await scanTar(tar, {hashMembers: () => ['sha256']}))
    execFileSync('tar', ['-czf', join(dir, 's.tar.gz'), 'vm.ovf', 'disk1.vmdk', longName], {cwd: content})
    const copy = join(dir, 's-copy.tar')
    let progressed = false
    const members = await scanGzipTar(join(dir, 's.tar.gz'), copy, {hashMembers: () => ['sha1'], onProgress: () => (progressed = true)})
    assert.ok(progressed)
    assert.deepEqual(readFileSync(copy).subarray(0, 10240), execFileSync('gunzip', ['-c', join(dir, 's.tar.gz')]).subarray(0, 10240))
    const disk = members.find((member) => member.name === 'disk1.vmdk') as TarMember
    assert.deepEqual(dataAt(copy, disk), payload)
    assert.equal(disk.digests.sha1, sha1(payload))
  })

  it('honours an aborted signal', async () => {
    const tar = tarOf('abort.tar', ['vm.ovf'])
    const controller = new AbortController()
    controller.abort()
    await assert.rejects(scanTar(tar, {signal: controller.signal}), refusal('H2K_CANCELLED'))
  })

  describe('hostile and damaged archives', () => {
    let hostile: string
    before(() => {
      hostile = join(dir, 'hostile')
      mkdirSync(join(hostile, 'inner'), {recursive: true})
      writeFileSync(join(hostile, 'x'), 'x')
      writeFileSync(join(hostile, 'inner', 'y'), 'y')
    })

    it('refuses a member named ../x', async () => {
      const tar = join(dir, 'dotdot.tar')
      execFileSync('tar', ['-cPf', tar, '../x'], {cwd: join(hostile, 'inner')})
      await assert.rejects(scanTar(tar), refusal('H2K_UNSAFE_ARCHIVE', '../x'))
    })

    it('refuses an absolute member name', async () => {
      const tar = join(dir, 'abs.tar')
      execFileSync('tar', ['-cPf', tar, join(hostile, 'x')])
      await assert.rejects(scanTar(tar), refusal('H2K_UNSAFE_ARCHIVE', join(hostile, 'x')))
    })

    it('refuses symlink and hardlink members', async () => {
      symlinkSync('/etc/passwd', join(hostile, 'link'))
      linkSync(join(hostile, 'x'), join(hostile, 'hard'))
      await assert.rejects(scanTar(tarOf('sym.tar', ['link'], hostile)), refusal('H2K_UNSAFE_ARCHIVE', 'symbolic link'))
      await assert.rejects(scanTar(tarOf('hard.tar', ['x', 'hard'], hostile)), refusal('H2K_UNSAFE_ARCHIVE', 'hard link'))
    })

    it('refuses device and FIFO members', async () => {
      const tar = join(dir, 'dev.tar')
      if (process.getuid?.() === 0) {
        execFileSync('mknod', [join(hostile, 'null'), 'c', '1', '3'])
        execFileSync('tar', ['-cf', tar, 'null'], {cwd: hostile})
      } else {
        writeFileSync(tar, craftTar([{name: 'null', type: '3'}]))
      }
      await assert.rejects(scanTar(tar), refusal('H2K_UNSAFE_ARCHIVE', 'character device'))
      writeFileSync(join(dir, 'blk.tar'), craftTar([{name: 'sda', type: '4'}]))
      await assert.rejects(scanTar(join(dir, 'blk.tar')), refusal('H2K_UNSAFE_ARCHIVE', 'block device'))
      execFileSync('mkfifo', [join(hostile, 'fifo')])
      await assert.rejects(scanTar(tarOf('fifo.tar', ['fifo'], hostile)), refusal('H2K_UNSAFE_ARCHIVE', 'FIFO'))
    })

    it('refuses GNU sparse members (old GNU and pax forms)', async () => {
      execFileSync('truncate', ['-s', '8M', join(hostile, 'sparse.img')])
      execFileSync('sh', ['-c', `printf data | dd of=${join(hostile, 'sparse.img')} bs=1 seek=4194304 conv=notrunc status=none`])
      await assert.rejects(scanTar(tarOf('sparse-gnu.tar', ['--sparse', '--format=gnu', 'sparse.img'], hostile)), refusal('H2K_UNSAFE_ARCHIVE', 'sparse'))
      await assert.rejects(scanTar(tarOf('sparse-pax.tar', ['--sparse', '--format=pax', 'sparse.img'], hostile)), refusal('H2K_UNSAFE_ARCHIVE', 'sparse'))
    })

    it('refuses duplicate names', async () => {
      const tar = tarOf('dup.tar', ['x'], hostile)
      execFileSync('tar', ['-rf', tar, './x'], {cwd: hostile})
      await assert.rejects(scanTar(tar), refusal('H2K_UNSAFE_ARCHIVE', 'twice'))
    })

    it('refuses a member whose size runs past the end of the archive', async () => {
      const tar = join(dir, 'oversize.tar')
      writeFileSync(tar, craftTar([{data: Buffer.from('abc'), name: 'disk.raw', size: 10 ** 12}]))
      await assert.rejects(scanTar(tar), refusal('H2K_UNSAFE_ARCHIVE', 'disk.raw'))
      await assert.rejects(scanTarStream(createReadStream(tar)), refusal('H2K_UNSAFE_ARCHIVE', 'disk.raw'))
    })

    it(`refuses more than ${MAX_TAR_MEMBERS} members`, async () => {
      const tar = join(dir, 'many.tar')
      writeFileSync(tar, craftTar(Array.from({length: MAX_TAR_MEMBERS + 1}, (_, index) => ({name: `f${index}`}))))
      await assert.rejects(scanTar(tar), refusal('H2K_UNSAFE_ARCHIVE', `f${MAX_TAR_MEMBERS}`))
    })

    it('reports a bad checksum, a truncated tar and truncated gzip as corrupt', async () => {
      writeFileSync(join(dir, 'badsum.tar'), craftTar([{badChecksum: true, name: 'x'}]))
      await assert.rejects(scanTar(join(dir, 'badsum.tar')), refusal('H2K_INPUT_CORRUPT', 'checksum'))
      writeFileSync(join(dir, 'noend.tar'), craftTar([{data: Buffer.from('abc'), name: 'x'}], {withoutEnd: true}))
      await assert.rejects(scanTar(join(dir, 'noend.tar')), refusal('H2K_INPUT_CORRUPT', 'truncated'))
      const cut = tarOf('cut.tar', ['vm.ovf', 'disk1.vmdk'])
      truncateSync(cut, 512 + 512 + 512 + 1000)
      await assert.rejects(scanTar(cut), refusal('H2K_UNSAFE_ARCHIVE', 'disk1.vmdk'))
      truncateSync(cut, 512 + 512 + 100)
      await assert.rejects(scanTar(cut), refusal('H2K_INPUT_CORRUPT', 'truncated'))
      writeFileSync(join(dir, 'cut.tar.gz'), execFileSync('gzip', ['-c', join(dir, 's.tar')]))
      truncateSync(join(dir, 'cut.tar.gz'), Math.floor(statSync(join(dir, 'cut.tar.gz')).size / 2))
      await assert.rejects(scanGzipTar(join(dir, 'cut.tar.gz'), join(dir, 'cut-copy.tar')), refusal('H2K_INPUT_CORRUPT', 'gzip'))
    })

    it('stops a gzip that expands beyond what may be written (a decompression bomb) with H2K_NO_SPACE', async () => {
      // 8 MiB of zeros compress to a few KiB: a small bomb; the bound is lowered to 1 MiB to meet it.
      writeFileSync(join(dir, 'bomb.tar'), craftTar([{data: Buffer.alloc(8 * 1024 * 1024), name: 'zeros.img'}]))
      writeFileSync(join(dir, 'bomb.tar.gz'), execFileSync('gzip', ['-c', join(dir, 'bomb.tar')]))
      assert.ok(statSync(join(dir, 'bomb.tar.gz')).size < 64 * 1024)
      await assert.rejects(scanGzipTar(join(dir, 'bomb.tar.gz'), join(dir, 'bomb-copy.tar'), {maxExpandedBytes: 1024 * 1024}), refusal('H2K_NO_SPACE', 'refusing to fill the filesystem'))
      assert.ok(!existsSync(join(dir, 'bomb-copy.tar')), 'the partial copy is removed at once (its space goes back to the others)')
      // Within the bound the same archive is read.
      const members = await scanGzipTar(join(dir, 'bomb.tar.gz'), join(dir, 'bomb-copy2.tar'), {maxExpandedBytes: 16 * 1024 * 1024})
      assert.deepEqual(members.map((m) => [m.name, m.size]), [['zeros.img', 8 * 1024 * 1024]])
    })
  })
})

describe('peekTarNames', () => {
  it('lists the first members, resolving GNU long names, and rejects non-tars', () => {
    const head = craftTar([
      {data: Buffer.from(`${'n'.repeat(150)}.ovf\0`), name: '././@LongLink', type: 'L'},
      {data: Buffer.from('<Envelope/>'), name: 'n'.repeat(99)},
      {data: Buffer.alloc(100_000), name: 'disk.vmdk'},
    ]).subarray(0, 64 * 1024)
    assert.deepEqual(peekTarNames(head), [`${'n'.repeat(150)}.ovf`, 'disk.vmdk'])
    assert.equal(peekTarNames(Buffer.alloc(4096)), null)
    assert.equal(peekTarNames(Buffer.from('KDMV'.padEnd(1024, '\0'))), null)
  })
})
