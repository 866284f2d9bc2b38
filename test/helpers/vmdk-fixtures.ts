import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {closeSync, openSync, readFileSync, readSync, statSync, truncateSync, writeFileSync, writeSync} from 'node:fs'

/** sha256 of a file, to prove a loader never wrote to its input. */
export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

/** Copy `lengthMiB` of a raw image from `offsetMiB` into a new raw file (qemu-img dd, so holes stay holes). */
export function rawSlice(raw: string, out: string, offsetMiB: number, lengthMiB: number): string {
  // qemu-img dd counts `count` from the start of the input, not from `skip` (unlike dd).
  execFileSync('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', `skip=${offsetMiB}`, `count=${offsetMiB + lengthMiB}`, `if=${raw}`, `of=${out}`], {stdio: 'pipe'})
  return out
}

/** A text descriptor file as VMware writes them (NUL-free, LF line ends). */
export function writeDescriptor(
  path: string,
  createType: string,
  extentLines: string[],
  {cid = 'fffffffe', parentCid = 'ffffffff', extra = []}: {cid?: string; parentCid?: string; extra?: string[]} = {},
): string {
  const text = [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${cid}`,
    `parentCID=${parentCid}`,
    'isNativeSnapshot="no"',
    `createType="${createType}"`,
    ...extra,
    '',
    '# Extent description',
    ...extentLines,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.adapterType = "lsilogic"',
    'ddb.thinProvisioned = "1"',
    'ddb.uuid = "60 00 C2 9f 3b 1e 5a 6d-8e 11 2c 4a 5b 6c 7d 8e"',
    'ddb.virtualHWVersion = "19"',
    '',
  ].join('\n')
  writeFileSync(path, text)
  return path
}

/**
 * qemu writes streamOptimized VMDKs with the grain directory near the start. VMware (ovftool, vCenter)
 * writes them in one pass: the header says "grain directory at end" (0xffffffffffffffff) and a footer
 * (footer marker, header copy, end-of-stream marker) closes the file. Turn a qemu-written stream into that
 * layout without touching its grains: append the footer that carries the real header, then mark the
 * header's gdOffset as "at end". qemu reads the result like VMware's.
 */
export function makeFooterStream(qemuStream: string): string {
  const size = statSync(qemuStream).size
  if (size % 512 !== 0) throw new Error('stream is not sector aligned')
  const fd = openSync(qemuStream, 'r+')
  try {
    const header = Buffer.alloc(512)
    readSync(fd, header, 0, 512, 0)
    const marker = Buffer.alloc(512)
    marker.writeBigUInt64LE(1n, 0) // one sector of metadata follows
    marker.writeUInt32LE(0, 8)
    marker.writeUInt32LE(3, 12) // MARKER_FOOTER
    const eos = Buffer.alloc(512) // MARKER_EOS: all zero
    writeSync(fd, Buffer.concat([marker, header, eos]), 0, 1536, size)
    const atEnd = Buffer.alloc(8, 0xff)
    writeSync(fd, atEnd, 0, 8, 56)
  } finally {
    closeSync(fd)
  }
  return qemuStream
}

/** Cut a file short (a download or copy that stopped early). */
export function truncateTo(path: string, size: number): void {
  truncateSync(path, size)
}

/** Content ids a descriptor (embedded or text) records. */
export function contentIds(path: string): {cid?: string; parentCid?: string} {
  const text = readFileSync(path).subarray(0, 64 * 1024).toString('latin1')
  return {cid: /^CID=(\w+)/m.exec(text)?.[1], parentCid: /^parentCID=(\w+)/m.exec(text)?.[1]}
}
