/**
 * Building blocks for the hostile image corpus (test/hostile/images/<case>/build.ts): a marker file outside
 * the input, small patterned disks, qcow2 images with an external data file, and sparse VMDKs whose first
 * header and footer disagree. Real qemu-img/qemu-io write the images; only the fields under attack are patched.
 */
import {execFileSync} from 'node:child_process'
import {closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync} from 'node:fs'
import {dirname, join} from 'node:path'

export const SECTOR = 512
const GD_AT_END = 0xffffffffffffffffn

/** Where a case keeps what the attacker wants to read: `<dir>/secret/<name>`, never inside the input. */
export function writeMarker(dir: string, marker: string, name = 'marker'): string {
  const path = join(dir, 'secret', name)
  mkdirSync(dirname(path), {recursive: true})
  // A whole sector of it, so an image that maps a sector of this file would carry it whole.
  writeFileSync(path, Buffer.alloc(SECTOR, `${marker}\n`))
  return path
}

/** A raw disk of `bytes` with a recognisable, non-zero pattern in every sector. */
export function patternedRaw(path: string, bytes = 1024 * 1024): string {
  mkdirSync(dirname(path), {recursive: true})
  const data = Buffer.alloc(bytes)
  for (let sector = 0; sector < bytes / SECTOR; sector++) data.fill((sector % 251) + 1, sector * SECTOR, (sector + 1) * SECTOR)
  writeFileSync(path, data)
  return path
}

/**
 * A qcow2 image whose clusters live in an external raw data file (data_file_raw, so guest offset = file
 * offset), written through a real data file and then re-pointed at `dataFileName` (absolute, relative,
 * with ".."), which is what an attacker's header says. The real data file is removed unless `keep`.
 */
export function qcow2WithDataFile(image: string, dataFileName: string, options: {keepData?: string} = {}): string {
  mkdirSync(dirname(image), {recursive: true})
  const scratch = options.keepData ?? join(dirname(image), '.scratch-data.raw')
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${scratch},data_file_raw=on`, image, '1M'])
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 64k', image], {stdio: 'ignore'})
  if (options.keepData === undefined) {
    execFileSync('qemu-img', ['amend', '-f', 'qcow2', '-o', `data_file=${dataFileName}`, image])
    execFileSync('rm', ['-f', scratch])
  } else if (dataFileName !== scratch) {
    execFileSync('qemu-img', ['amend', '-f', 'qcow2', '-o', `data_file=${dataFileName}`, image])
  }
  return image
}

/** A streamOptimized VMDK written by qemu-img (grain directory near the start, no footer yet). */
export function streamOptimized(raw: string, out: string): string {
  mkdirSync(dirname(out), {recursive: true})
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, out])
  return out
}

/** A monolithicSparse VMDK written by qemu-img (embedded descriptor at sector 1). */
export function monolithicSparse(raw: string, out: string): string {
  mkdirSync(dirname(out), {recursive: true})
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicSparse', raw, out])
  return out
}

/** A monolithicFlat descriptor naming one FLAT extent: what qemu follows from a capacity-0 header. */
export function flatDescriptor(extent: string, sectors = 1): string {
  return `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW ${sectors} FLAT "${extent}" 0\n\nddb.adapterType = "ide"\n`
}

export interface FooterTrick {
  /** Text of a descriptor the FIRST header points at (appended before the footer). */
  firstDescriptor?: string
  /** Capacity (sectors) the first header claims; the footer keeps the real one. */
  firstCapacity?: bigint
}

/**
 * Give a qemu-written stream the one-pass (VMware) layout, as test/helpers/vmdk-fixtures.ts does, but
 * make its FIRST header say something else than the footer: a different capacity, and/or a descriptor of
 * its own. The footer keeps the honest header, so a validator that reads only the footer approves.
 */
export function footerTrick(stream: string, trick: FooterTrick): string {
  const data = readFileSync(stream)
  if (data.length % SECTOR !== 0) throw new Error('stream is not sector aligned')
  const honest = Buffer.from(data.subarray(0, SECTOR))
  const parts: Buffer[] = [data]
  const first = Buffer.from(honest)
  if (trick.firstDescriptor !== undefined) {
    const text = Buffer.from(trick.firstDescriptor, 'utf8')
    const sectors = Math.ceil((text.length + 1) / SECTOR)
    const region = Buffer.alloc(sectors * SECTOR)
    text.copy(region)
    first.writeBigUInt64LE(BigInt(data.length / SECTOR), 28) // descriptorOffset
    first.writeBigUInt64LE(BigInt(sectors), 36) // descriptorSize
    parts.push(region)
  }
  if (trick.firstCapacity !== undefined) first.writeBigUInt64LE(trick.firstCapacity, 12)
  first.writeBigUInt64LE(GD_AT_END, 56)
  const marker = Buffer.alloc(SECTOR)
  marker.writeBigUInt64LE(1n, 0)
  marker.writeUInt32LE(3, 12) // MARKER_FOOTER
  parts.push(marker, honest, Buffer.alloc(SECTOR)) // footer marker, footer (the honest header), end-of-stream
  const result = Buffer.concat(parts)
  first.copy(result, 0)
  writeFileSync(stream, result)
  return stream
}

/** Overwrite the embedded descriptor of a qemu-written monolithicSparse VMDK (sector 1, 20 sectors). */
export function replaceEmbeddedDescriptor(vmdk: string, edit: (text: string) => string): string {
  const data = readFileSync(vmdk)
  const offset = Number(data.readBigUInt64LE(28)) * SECTOR
  const size = Number(data.readBigUInt64LE(36)) * SECTOR
  const region = data.subarray(offset, offset + size)
  const end = region.indexOf(0)
  const text = edit(region.subarray(0, end < 0 ? region.length : end).toString('utf8'))
  const replacement = Buffer.alloc(size)
  if (Buffer.byteLength(text) >= size) throw new Error('descriptor too long')
  replacement.write(text, 'utf8')
  const fd = openSync(vmdk, 'r+')
  try {
    writeSync(fd, replacement, 0, size, offset)
  } finally {
    closeSync(fd)
  }
  return vmdk
}

/** The attack of issue #9 finding 2: first header capacity 0 wrapping a flat descriptor naming `target`, honest footer. */
export function vmdkFooterTrick(dir: string, name: string, target: string): string {
  const raw = patternedRaw(join(dir, '.scratch.raw'))
  const vmdk = streamOptimized(raw, join(dir, name))
  execFileSync('rm', ['-f', raw])
  return footerTrick(vmdk, {firstCapacity: 0n, firstDescriptor: flatDescriptor(target)})
}

/** What a case's build() returns to the runner. */
export interface BuiltCase {
  /** The path given to `convert` (a file or an OVF directory). */
  input: string
  /** The marker file outside the input, whose content must reach no output. */
  marker: string
  /** For cases that convert: the image the output must equal (`qemu-img compare`). */
  expected?: {path: string; format: string}
}
