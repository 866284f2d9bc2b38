/**
 * Rebuilds the binary seed corpora under test/fuzz/corpus/ from real tools (qemu-img, qemu-io, tar), so
 * the committed seeds can be regenerated and checked: `npx tsx test/fuzz/make-seeds.ts`. Text seeds
 * (VMDK descriptors, job files) are plain files in the corpus and not made here.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {manifestFor, ovfText} from '../helpers/ovf-fixtures.js'
import {SEED_DIR} from './engine/corpus-files.js'
import {encodeSparseImage} from './engine/sparse-image.js'

const work = mkdtempSync(join(tmpdir(), 'h2k-seeds-'))
const run = (tool: string, args: string[]): void => void execFileSync(tool, args, {cwd: work, stdio: 'pipe'})
const seed = (target: string, name: string, bytes: Buffer | string): void => {
  mkdirSync(join(SEED_DIR, target), {recursive: true})
  writeFileSync(join(SEED_DIR, target, name), bytes)
}

/** A sparse image seed with the given checksummed areas' checksum fields zeroed (the VHDX target fills them in). */
function imageSeed(target: string, name: string, file: string, zeroChecksumsAt: number[] = []): void {
  const image = readFileSync(join(work, file))
  for (const at of zeroChecksumsAt) image.writeUInt32LE(0, at + 4)
  seed(target, name, encodeSparseImage(image))
}

/** Tar with every header's checksum field blanked (the tar target fills it in), so mutated headers stay readable. */
function tarSeed(name: string, args: string[]): void {
  run('tar', ['-cf', 'seed.tar', ...args])
  const tar = readFileSync(join(work, 'seed.tar'))
  for (let at = 0; at + 512 <= tar.length; at += 512) {
    if (tar.subarray(at + 257, at + 262).toString('latin1') === 'ustar') tar.write('        ', at + 148, 'latin1')
  }
  // Trailing zero blocks past the two end-of-archive blocks carry nothing to fuzz.
  let end = tar.length
  while (end > 1024 && !tar.subarray(end - 1536, end - 1024).some((byte) => byte !== 0)) end -= 512
  seed('tar-index', name, tar.subarray(0, end))
}

try {
  run('qemu-img', ['create', '-q', '-f', 'vmdk', 'sparse.vmdk', '1M'])
  run('qemu-io', ['-f', 'vmdk', '-c', 'write -q -P 0x5a 65536 4096', 'sparse.vmdk'])
  imageSeed('vmdk-sparse', 'monolithic-sparse.bin', 'sparse.vmdk')
  run('qemu-img', ['create', '-q', '-f', 'raw', 'data.raw', '1M'])
  run('qemu-io', ['-f', 'raw', '-c', 'write -q -P 0x5a 0 1024', 'data.raw'])
  run('qemu-img', ['convert', '-q', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'data.raw', 'stream.vmdk'])
  imageSeed('vmdk-sparse', 'stream-optimized.bin', 'stream.vmdk')

  const KiB = 1024
  const checksummed = [64 * KiB, 128 * KiB, 192 * KiB, 256 * KiB]
  run('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', 'empty.vhdx', '4M'])
  imageSeed('vhdx-layout', 'dynamic-empty.bin', 'empty.vhdx', checksummed)
  run('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', 'written.vhdx', '4M'])
  run('qemu-io', ['-f', 'vhdx', '-c', 'write -q -P 0x5a 1048576 512', 'written.vhdx'])
  imageSeed('vhdx-layout', 'dynamic-one-block.bin', 'written.vhdx', checksummed)

  writeFileSync(join(work, 'disk1.vmdk'), 'KDMV')
  writeFileSync(join(work, 'vm.ovf'), ovfText('vm', [{href: 'disk1.vmdk', id: 'vmdisk1'}]))
  writeFileSync(join(work, 'vm.mf'), manifestFor(work, ['vm.ovf', 'disk1.vmdk'], 'SHA256'))
  tarSeed('gnu-ova.tar', ['--format=gnu', 'vm.ovf', 'vm.mf', 'disk1.vmdk'])
  mkdirSync(join(work, 'a-directory-name-long-enough-that-ustar-needs-its-prefix-field-or-a-pax-record'), {recursive: true})
  writeFileSync(join(work, 'a-directory-name-long-enough-that-ustar-needs-its-prefix-field-or-a-pax-record', 'a-file-name-that-is-long-as-well.vmdk'), 'x')
  tarSeed('pax-long-name.tar', ['--format=pax', '--pax-option=delete=atime,delete=ctime', 'a-directory-name-long-enough-that-ustar-needs-its-prefix-field-or-a-pax-record'])
  tarSeed('gnu-long-name.tar', ['--format=gnu', 'a-directory-name-long-enough-that-ustar-needs-its-prefix-field-or-a-pax-record'])

  seed('ovf-descriptor', 'vmware-one-disk.ovf', ovfText('vm', [{href: 'disk1.vmdk', id: 'vmdisk1'}]))
  seed('ovf-descriptor', 'two-disks-gzip.ovf', ovfText('two', [{href: 'a.vmdk.gz', id: 'd1', compression: 'gzip'}, {href: 'b.vmdk', id: 'd2'}]))
  seed('ovf-manifest', 'sha256.mf', readFileSync(join(work, 'vm.mf')))
  seed('ovf-manifest', 'sha1.mf', manifestFor(work, ['vm.ovf', 'disk1.vmdk'], 'SHA1'))
} finally {
  rmSync(work, {recursive: true, force: true})
}
