import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {BARE_FILESYSTEM_HEAD, type BareFilesystemType, detectBareFilesystem} from '@hyper2kvm/plugin-api'

import {makeBareFs} from '../helpers/bare-fs-image.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * detectBareFilesystem reads an untrusted head: real superblocks (the host's mkfs) cut at every length
 * around the fields it reads never throw and are recognised only when complete; sizes a hostile image
 * states are kept as bigints and never trusted for anything but a warning.
 */
describe('bare filesystem superblocks (detectBareFilesystem)', function () {
  this.timeout(60_000)
  const heads = new Map<BareFilesystemType, Buffer>()
  let tmp: ReturnType<typeof makeTempDir>
  before(() => {
    tmp = makeTempDir()
    for (const type of ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs'] as const) {
      const path = join(tmp.dir, `${type}.img`)
      makeBareFs(type, path)
      heads.set(type, readFileSync(path).subarray(0, BARE_FILESYSTEM_HEAD))
    }
  })
  after(() => tmp.cleanup())
  const head = (type: BareFilesystemType) => Buffer.from(heads.get(type)!)

  it('recognises each filesystem mkfs makes, ext2/3/4 told apart by journal and feature flags, with its size', () => {
    for (const [type, bytes] of heads) {
      const found = detectBareFilesystem(bytes)
      assert.equal(found?.type, type)
      assert.equal(found?.bytes, BigInt({btrfs: 128, ext2: 64, ext3: 64, ext4: 64, xfs: 300}[type] * 1024 * 1024))
    }
  })

  it('a superblock cut short at any length before its last field read is not a filesystem (and never throws)', () => {
    // The last byte each detector reads: ext 1024+0x68 (0x154 for 64bit counts), XFS 16, btrfs 64 KiB + 148.
    const needed: Record<BareFilesystemType, number> = {btrfs: 65_536 + 148, ext2: 1024 + 0x68, ext3: 1024 + 0x68, ext4: 1024 + 0x68, xfs: 16}
    for (const [type, bytes] of heads) {
      for (let length = 0; length < needed[type]; length += length < needed[type] - 300 ? 97 : 1) {
        assert.equal(detectBareFilesystem(bytes.subarray(0, length)), null, `${type} cut at ${length}`)
      }
      assert.equal(detectBareFilesystem(bytes.subarray(0, needed[type]))?.type, type)
    }
  })

  it('an MBR boot signature or a GPT header wins over any superblock', () => {
    for (const type of heads.keys()) {
      const mbr = head(type)
      mbr[510] = 0x55
      mbr[511] = 0xaa
      assert.equal(detectBareFilesystem(mbr), null, `${type} behind an MBR`)
      const gpt = head(type)
      gpt.write('EFI PART', 512, 'latin1')
      assert.equal(detectBareFilesystem(gpt), null, `${type} behind a GPT`)
    }
  })

  it('impossible sizes are refused; the largest a superblock may state is kept exactly, not as a float', () => {
    const ext = head('ext4')
    ext.writeUInt32LE(7, 1024 + 0x18)
    assert.equal(detectBareFilesystem(ext), null, 'block size above 64 KiB')
    const zero = head('ext4')
    zero.writeUInt32LE(0, 1024 + 0x04)
    assert.equal(detectBareFilesystem(zero), null, 'no blocks')
    const huge = head('ext4')
    huge.writeUInt32LE(huge.readUInt32LE(1024 + 0x60) | 0x80, 1024 + 0x60)
    huge.writeUInt32LE(0xffffffff, 1024 + 0x04)
    huge.writeUInt32LE(0xffffffff, 1024 + 0x150)
    huge.writeUInt32LE(6, 1024 + 0x18)
    assert.equal(detectBareFilesystem(huge)?.bytes, (2n ** 64n - 1n) * 65_536n)
    for (const size of [0, 256, 3000, 131_072]) {
      const xfs = head('xfs')
      xfs.writeUInt32BE(size, 4)
      assert.equal(detectBareFilesystem(xfs), null, `XFS block size ${size}`)
    }
    const btrfs = head('btrfs')
    btrfs.writeBigUInt64LE(0n, 65_536 + 48)
    assert.equal(detectBareFilesystem(btrfs), null, 'btrfs superblock that says it is elsewhere')
    const sector = head('btrfs')
    sector.writeUInt32LE(4097, 65_536 + 144)
    assert.equal(detectBareFilesystem(sector), null, 'btrfs sector size no power of two')
  })
})
