import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {GuestSession} from '@hyper2kvm/plugin-api'

import {INITRAMFS_VIRTIO_FN, initramfsHasVirtio} from '../../../plugins/linux/src/guest-facts.js'

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
