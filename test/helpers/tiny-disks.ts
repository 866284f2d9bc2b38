import {execFile} from 'node:child_process'
import {closeSync, existsSync, ftruncateSync, mkdirSync, openSync, renameSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

const run = promisify(execFile)

/** Virtual size of every tiny disk: a conversion of one takes a few tens of milliseconds. */
export const TINY_DISK_SIZE = 1024 * 1024

/** One small data disk made for a test: where it waits to be dropped, and the raw image it must convert to. */
export interface TinyDisk {
  /** Index among the disks made together: what its content is derived from. */
  index: number
  /** File name as dropped (`tiny-0042.raw`, `tiny-0043.qcow2`). */
  name: string
  /** The file name without its extension: the daemon's output directory and output file are named after it. */
  stem: string
  format: 'raw' | 'qcow2'
  /** Where the disk is staged until dropped (same filesystem as the drop directory: the drop is a rename). */
  path: string
  /** A raw image with the content every conversion of the disk must show (kept apart, never dropped). */
  expected: string
}

/**
 * The data regions of disk `index`: two single-byte fills whose pair of values is unique per index (up to
 * 62 500 disks), one region whose offset depends on the index, and the last sector. Single-byte fills never
 * form a partition table or filesystem signature, so the daemon treats the disks as plain data disks.
 */
function regionsOf(index: number): Array<{offset: number; length: number; byte: number}> {
  const sector = 512
  const slots = TINY_DISK_SIZE / 4096 - 64
  return [
    {byte: 1 + (index % 250), length: 4096, offset: 0},
    {byte: 1 + Math.floor(index / 250), length: 4096, offset: 64 * 1024},
    {byte: 0xa5, length: 4096, offset: (32 + (index % slots)) * 4096},
    {byte: 1 + ((index * 7) % 250), length: sector, offset: TINY_DISK_SIZE - sector},
  ]
}

/** Write disk `index`'s content as a sparse raw image (holes between the regions). */
function writeRaw(path: string, index: number): void {
  const fd = openSync(path, 'w', 0o644)
  try {
    ftruncateSync(fd, TINY_DISK_SIZE)
    for (const region of regionsOf(index)) writeSync(fd, Buffer.alloc(region.length, region.byte), 0, region.length, region.offset)
  } finally {
    closeSync(fd)
  }
}

/**
 * Make `count` tiny disks in `dir`/staged (raw, and every `qcow2Every`-th one qcow2 converted by qemu-img),
 * each with its expected raw content in `dir`/expected. Raw disks are written directly (sparse, no process
 * per disk): 300 of them take well under a second; qcow2 ones cost one qemu-img each, at most `parallel`
 * at a time. Names start at `first` so several batches in one directory do not collide.
 */
export async function makeTinyDisks(dir: string, count: number, options: {qcow2Every?: number; first?: number; prefix?: string; parallel?: number} = {}): Promise<TinyDisk[]> {
  const staged = join(dir, 'staged')
  const expectedDir = join(dir, 'expected')
  mkdirSync(staged, {recursive: true})
  mkdirSync(expectedDir, {recursive: true})
  const first = options.first ?? 0
  const prefix = options.prefix ?? 'tiny'
  const disks: TinyDisk[] = []
  for (let index = first; index < first + count; index++) {
    const format = options.qcow2Every !== undefined && options.qcow2Every > 0 && index % options.qcow2Every === options.qcow2Every - 1 ? 'qcow2' : 'raw'
    const stem = `${prefix}-${String(index).padStart(4, '0')}`
    const expected = join(expectedDir, `${stem}.raw`)
    writeRaw(expected, index)
    disks.push({expected, format, index, name: `${stem}.${format}`, path: join(staged, `${stem}.${format}`), stem})
  }
  const raws = disks.filter((disk) => disk.format === 'raw')
  for (const disk of raws) writeRaw(disk.path, disk.index)
  const qcow2s = disks.filter((disk) => disk.format === 'qcow2')
  const parallel = options.parallel ?? 2
  for (let at = 0; at < qcow2s.length; at += parallel) {
    await Promise.all(qcow2s.slice(at, at + parallel).map((disk) => run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', disk.expected, disk.path])))
  }
  return disks
}

/** Drop every disk into `dropDir` at once: renames on one filesystem, so each appears complete. */
export function dropDisks(disks: readonly TinyDisk[], dropDir: string): void {
  for (const disk of disks) renameSync(disk.path, join(dropDir, disk.name))
}

/** Whether `qemu-img compare` finds `output` (format `format`) equal to the disk's expected content. */
export async function convertedIntact(disk: TinyDisk, output: string, format = 'qcow2'): Promise<boolean> {
  try {
    await run('qemu-img', ['compare', '-q', '-f', 'raw', '-F', format, disk.expected, output])
    return true
  } catch {
    return false
  }
}

/**
 * Make `count` disks whose conversion takes seconds, not milliseconds (`sizeMiB` of incompressible data,
 * converted with `compress: true`): a fault injected while one runs lands inside a conversion. One random
 * base image is written per directory (dd from /dev/urandom); each disk is a copy of it (reflinked where
 * the filesystem can) with its first 4 KiB stamped by its index, and a second copy is its expected content.
 */
export async function makeSlowDisks(dir: string, count: number, options: {sizeMiB?: number; first?: number; prefix?: string} = {}): Promise<TinyDisk[]> {
  const staged = join(dir, 'staged')
  const expectedDir = join(dir, 'expected')
  mkdirSync(staged, {recursive: true})
  mkdirSync(expectedDir, {recursive: true})
  const sizeMiB = options.sizeMiB ?? 192
  const base = join(dir, `random-${sizeMiB}.base`)
  if (!existsSync(base)) await run('dd', ['if=/dev/urandom', `of=${base}`, 'bs=1M', `count=${sizeMiB}`, 'status=none'])
  const first = options.first ?? 0
  const prefix = options.prefix ?? 'slow'
  const disks: TinyDisk[] = []
  for (let index = first; index < first + count; index++) {
    const stem = `${prefix}-${String(index).padStart(4, '0')}`
    const disk: TinyDisk = {expected: join(expectedDir, `${stem}.raw`), format: 'raw', index, name: `${stem}.raw`, path: join(staged, `${stem}.raw`), stem}
    await run('cp', ['--reflink=auto', base, disk.path])
    const fd = openSync(disk.path, 'r+')
    try {
      writeSync(fd, Buffer.alloc(4096, 1 + (index % 250)), 0, 4096, 0)
    } finally {
      closeSync(fd)
    }
    await run('cp', ['--reflink=auto', disk.path, disk.expected])
    disks.push(disk)
  }
  return disks
}
