import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {GuestSession} from '@hyper2kvm/plugin-api'

import {INITRAMFS_VIRTIO_FN, initramfsHasVirtio} from '../../../plugins/linux/src/guest-facts.js'
import {rebuiltImages} from '../../../plugins/linux/src/initramfs-fixer.js'

/** A newc cpio of the files under `tree` (relative paths), as initramfs tools write them. */
function cpioOf(tree: string): Buffer {
  return execFileSync('sh', ['-c', 'cd "$0" && find . | LC_ALL=C sort | cpio -o -H newc --quiet', tree])
}

function compressed(data: Buffer, tool: string[]): Buffer {
  return execFileSync(tool[0]!, tool.slice(1), {input: data})
}

/** The guest's answer for one image, from the same shell function the facts script runs in the guest. */
function virtioIn(image: string): string {
  return execFileSync('sh', ['-c', `${INITRAMFS_VIRTIO_FN}\ninitramfs_virtio "$0"`, image], {encoding: 'utf8'}).trim()
}

describe('initramfs virtio_blk check (the shell function run in the guest)', () => {
  let dir: string
  let withVirtio: Buffer
  let orderOnly: Buffer

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'h2k-initramfs-check-'))
    const a = join(dir, 'a/usr/lib/modules/6.1.0-9-amd64/kernel/drivers/block')
    mkdirSync(a, {recursive: true})
    writeFileSync(join(a, 'virtio_blk.ko'), 'module')
    withVirtio = cpioOf(join(dir, 'a'))
    // modules.order inside every initramfs-tools image names every module of the kernel, included or not.
    const b = join(dir, 'b/usr/lib/modules/6.1.0-9-amd64')
    mkdirSync(b, {recursive: true})
    writeFileSync(join(b, 'modules.order'), 'kernel/drivers/block/virtio_blk.ko\nkernel/drivers/ata/ahci.ko\n')
    orderOnly = cpioOf(join(dir, 'b'))
  })

  after(() => rmSync(dir, {force: true, recursive: true}))

  for (const [name, tool] of [
    ['gzip', ['gzip', '-c']],
    ['zstd', ['zstd', '-q', '-c']],
    ['xz', ['xz', '-c', '--check=crc32']],
    ['lz4 (legacy)', ['lz4', '-l', '-c']],
  ] as const) {
    it(`lists a ${name} image with one decompressor: yes with the module, no when only modules.order names it`, () => {
      writeFileSync(join(dir, 'yes.img'), compressed(withVirtio, [...tool]))
      writeFileSync(join(dir, 'no.img'), compressed(orderOnly, [...tool]))
      assert.equal(virtioIn(join(dir, 'yes.img')), 'yes')
      assert.equal(virtioIn(join(dir, 'no.img')), 'no')
    })
  }

  it('hands an image that starts with an uncompressed (early) cpio to lsinitramfs, which sees the compressed main archive too', () => {
    // early: an uncompressed cpio without the module; main: gzip with it (the microcode layout).
    writeFileSync(join(dir, 'early.img'), Buffer.concat([orderOnly, compressed(withVirtio, ['gzip', '-c'])]))
    assert.equal(virtioIn(join(dir, 'early.img')), 'yes')
    writeFileSync(join(dir, 'early-no.img'), Buffer.concat([orderOnly, compressed(orderOnly, ['gzip', '-c'])]))
    assert.equal(virtioIn(join(dir, 'early-no.img')), 'no')
  })

  it('answers no for a file that is not an initramfs at all', () => {
    writeFileSync(join(dir, 'garbage.img'), 'not an image\n')
    assert.equal(virtioIn(join(dir, 'garbage.img')), 'no')
  })

  it('initramfsHasVirtio checks exactly the images asked for, in one shell run, paths with quotes included', async () => {
    const odd = join(dir, "it's here.img")
    writeFileSync(odd, compressed(withVirtio, ['gzip', '-c']))
    writeFileSync(join(dir, 'no.img'), compressed(orderOnly, ['gzip', '-c']))
    const scripts: string[] = []
    // A real shell on this host stands in for the appliance's: the script is the one the guest would run.
    const session = {
      sh: async (script: string) => {
        scripts.push(script)
        return execFileSync('sh', ['-c', script], {encoding: 'utf8'})
      },
    } as unknown as GuestSession
    const answers = await initramfsHasVirtio(session, [odd, join(dir, 'no.img')])
    assert.equal(scripts.length, 1)
    assert.deepEqual([...answers], [[odd, true], [join(dir, 'no.img'), false]])
  })
})

/**
 * A guest lister that sees every archive of an image, as the kernel unpacks them: a stand-in for the
 * guest's lsinitramfs/lsinitrd where those see more than the quick listing (dracut's squashed images, a
 * newer unmkinitramfs). It really parses the image: every gzip member, every newc archive in the stream.
 */
const LISTER = `#!${process.execPath}
const data = require('node:zlib').gunzipSync(require('node:fs').readFileSync(process.argv.at(-1)))
let at = 0
while (at + 110 <= data.length) {
  if (data.readUInt32LE(at) === 0) { at += 4; continue }
  const field = (offset) => parseInt(data.toString('latin1', at + offset, at + offset + 8), 16)
  if (!/^07070[12]$/.test(data.toString('latin1', at, at + 6))) throw new Error('not a newc header')
  const namesize = field(94)
  const filesize = field(54)
  const name = data.toString('latin1', at + 110, at + 110 + namesize - 1)
  at = (at + 110 + namesize + 3) & ~3
  at = (at + filesize + 3) & ~3
  if (name !== 'TRAILER!!!') console.log(name)
}
`

describe('a rebuilt initramfs the quick listing calls virtio-less (several compressed archives)', () => {
  let dir: string
  let image: string
  const kernels = () => [{hasVirtio: true, initramfs: image, version: '6.1.0-9-amd64'}]

  /** The guest's shell, with exactly the programs in `bin` (and the host's shell tools the script needs). */
  function guestWith(bin: string): GuestSession {
    return {sh: async (script: string) => execFileSync('sh', ['-c', script], {encoding: 'utf8', env: {PATH: bin}})} as unknown as GuestSession
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'h2k-initramfs-multi-'))
    const early = join(dir, 'early/etc')
    mkdirSync(early, {recursive: true})
    writeFileSync(join(early, 'firmware.conf'), 'x\n')
    const main = join(dir, 'main/usr/lib/modules/6.1.0-9-amd64/kernel/drivers/block')
    mkdirSync(main, {recursive: true})
    writeFileSync(join(main, 'virtio_blk.ko'), 'module')
    // Two gzip-compressed archives back to back: the kernel unpacks both; one gzip | cpio -t lists the first.
    image = join(dir, 'initrd.img')
    writeFileSync(image, Buffer.concat([compressed(cpioOf(join(dir, 'early')), ['gzip', '-c']), compressed(cpioOf(join(dir, 'main')), ['gzip', '-c'])]))
    for (const name of ['bare', 'lister']) {
      mkdirSync(join(dir, name))
      for (const tool of ['sh', 'od', 'tr', 'gzip', 'cpio', 'grep']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], {encoding: 'utf8'}).trim(), join(dir, name, tool))
    }
    writeFileSync(join(dir, 'lister/lsinitramfs'), LISTER)
    chmodSync(join(dir, 'lister/lsinitramfs'), 0o755)
  })

  after(() => rmSync(dir, {force: true, recursive: true}))

  it('the quick listing alone says no (what made the fixer fail)', () => {
    assert.equal(execFileSync('sh', ['-c', `${INITRAMFS_VIRTIO_FN}\ninitramfs_virtio "$0"`, image], {encoding: 'utf8', env: {PATH: join(dir, 'bare')}}).trim(), 'no')
  })

  it('the guest\'s lister has the last word before the fixer calls the image virtio-less', async () => {
    const rebuilt = await rebuiltImages(guestWith(join(dir, 'lister')), kernels())
    assert.deepEqual(rebuilt.get('6.1.0-9-amd64'), {image, virtio: true})
  })

  it('without a lister in the guest the quick "no" stands (the fixer still fails rather than guess)', async () => {
    const rebuilt = await rebuiltImages(guestWith(join(dir, 'bare')), kernels())
    assert.deepEqual(rebuilt.get('6.1.0-9-amd64'), {image, virtio: false})
  })
})
