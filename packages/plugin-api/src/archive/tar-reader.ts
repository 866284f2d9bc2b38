import {createHash, type Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {open, rm, stat} from 'node:fs/promises'
import {dirname} from 'node:path'
import {type Readable, Transform} from 'node:stream'
import {createGunzip} from 'node:zlib'

import {H2KError, isH2KError} from '../errors/h2k-error.js'
import {DECOMPRESS_RESERVE_BYTES, ExpansionLease} from './expansion-budget.js'
import {canonicalMemberName, unsafeMember} from './member-name.js'
import {FileTarSource, StreamTarSource, type TarByteSource, throwIfCancelled} from './tar-block-source.js'
import {corruptArchive, isZeroBlock, paddedSize, parsePaxRecords, parseTarHeader, paxSize, TAR_BLOCK} from './tar-header.js'

export type DigestAlgorithm = 'sha1' | 'sha256' | 'sha512'

/** A regular file inside a tar, located so it can be read in place. */
export interface TarMember {
  /** Canonical name: no "./" or empty segments. */
  name: string
  /** Offset of the member's data in the (uncompressed) tar. */
  offset: number
  size: number
  /** Lower-case hex digests computed while scanning, for the algorithms `hashMembers` asked for. */
  digests: Partial<Record<DigestAlgorithm, string>>
}

export interface TarScanProgress {
  /** Bytes of the input consumed (for gzip input: compressed bytes). */
  bytesDone: number
  bytesTotal?: number
  /** The member being read. */
  member?: string
}

export interface ScanTarOptions {
  signal?: AbortSignal
  /** Which digests to compute of a member's data while scanning; members not hashed are skipped without reading. */
  hashMembers?: (name: string) => readonly DigestAlgorithm[]
  onProgress?: (progress: TarScanProgress) => void
  /** Name of the archive in error messages (defaults to the path). */
  label?: string
}

/** More members than any VM export has; beyond it the archive is refused rather than indexed. */
export const MAX_TAR_MEMBERS = 10_000
/** pax and GNU long-name records are small; a huge one is hostile. */
const MAX_META_SIZE = 1024 * 1024
/** Report progress at least this often while hashing member data. */
const PROGRESS_STEP = 64 * 1024 * 1024

const REGULAR_TYPES = new Set(['0', '7'])
const REFUSED_TYPES: Readonly<Record<string, string>> = {
  '1': 'is a hard link',
  '2': 'is a symbolic link',
  '3': 'is a character device',
  '4': 'is a block device',
  '6': 'is a FIFO',
  D: 'is a GNU dump directory',
  M: 'is a multi-volume continuation',
  N: 'uses obsolete GNU long-name records',
  S: 'is a GNU sparse file',
}

interface PendingMeta {
  path?: string
  size?: number
  longName?: string
}

async function readMeta(source: TarByteSource, size: number, at: number, archive: string): Promise<Buffer> {
  if (size > MAX_META_SIZE) throw unsafeMember(`(header at offset ${at})`, `carries a ${size}-byte metadata record`, archive)
  const data = await source.read(size)
  const padding = paddedSize(size) - size
  if (data.length < size || (await source.skip(padding)) < padding) {
    throw corruptArchive(`${archive}: the archive ends inside a metadata record at offset ${at}: it is truncated.`, at)
  }
  return data
}

function applyPax(records: Map<string, string>, pending: PendingMeta, at: number, archive: string, global: boolean): void {
  for (const key of records.keys()) {
    if (key.startsWith('GNU.sparse.')) throw unsafeMember(records.get('path') ?? `(header at offset ${at})`, 'is a GNU sparse file', archive)
  }
  const path = records.get('path')
  const size = records.get('size')
  // A global header that renames or resizes every later member has no honest use; refuse it.
  if (global && (path !== undefined || size !== undefined)) throw unsafeMember(path ?? `(header at offset ${at})`, 'is a global pax header that sets a path or size', archive)
  if (path !== undefined) pending.path = path
  if (size !== undefined) pending.size = paxSize(size, at)
}

/** Walk the headers of a tar from `source`, hashing the data of the members asked for, skipping the rest. */
async function walkTar(source: TarByteSource, options: ScanTarOptions, archive: string, progress: () => TarScanProgress): Promise<TarMember[]> {
  const members: TarMember[] = []
  const names = new Set<string>()
  let pending: PendingMeta = {}
  let entries = 0
  let headers = 0
  for (;;) {
    throwIfCancelled(options.signal)
    const at = source.position
    const block = await source.read(TAR_BLOCK)
    if (block.length === 0) {
      throw corruptArchive(`${archive}: the archive ends at offset ${at} without an end-of-archive marker: it is truncated.`, at)
    }
    if (block.length < TAR_BLOCK) throw corruptArchive(`${archive}: the archive ends inside a tar header at offset ${at}: it is truncated.`, at)
    if (isZeroBlock(block)) break
    let header
    try {
      header = parseTarHeader(block, at)
    } catch (error) {
      if (isH2KError(error)) throw new H2KError(error.code, `${archive}: ${error.message}`, {cause: error, details: error.details})
      throw error
    }
    // Every member costs up to three headers (pax, long name, itself); bound the walk either way.
    if (++headers > MAX_TAR_MEMBERS * 3) throw unsafeMember(header.name, `is beyond the limit of ${MAX_TAR_MEMBERS} members`, archive)
    switch (header.type) {
      case 'x':
        applyPax(parsePaxRecords(await readMeta(source, header.size, at, archive), at), pending, at, archive, false)
        continue
      case 'g':
        applyPax(parsePaxRecords(await readMeta(source, header.size, at, archive), at), pending, at, archive, true)
        continue
      case 'L': {
        const data = await readMeta(source, header.size, at, archive)
        const end = data.indexOf(0)
        pending.longName = data.subarray(0, end === -1 ? data.length : end).toString('utf8')
        continue
      }
      case 'K':
        // A long link target: only links use it, and links are refused when their header arrives.
        await readMeta(source, header.size, at, archive)
        continue
      case 'V': {
        // A volume label names the tape, not a file.
        const padded = paddedSize(header.size)
        if ((await source.skip(padded)) < padded) throw corruptArchive(`${archive}: the archive ends inside a volume label: it is truncated.`, at)
        pending = {}
        continue
      }
    }
    const rawName = pending.path ?? pending.longName ?? header.name
    const size = pending.size ?? header.size
    pending = {}
    const name = canonicalMemberName(rawName, archive)
    const refusal = REFUSED_TYPES[header.type]
    if (refusal) throw unsafeMember(rawName, refusal, archive)
    const isDirectory = header.type === '5'
    if (!isDirectory && !REGULAR_TYPES.has(header.type)) throw unsafeMember(rawName, `has an unknown tar type "${header.type}"`, archive)
    if (++entries > MAX_TAR_MEMBERS) throw unsafeMember(rawName, `is beyond the limit of ${MAX_TAR_MEMBERS} members`, archive)
    if (!isDirectory) {
      if (name === '') throw unsafeMember(rawName, 'has an empty name', archive)
      if (names.has(name)) throw unsafeMember(rawName, 'appears twice in the archive', archive)
      names.add(name)
    }
    const offset = source.position
    if (source.length !== undefined && offset + size > source.length) {
      throw new H2KError('H2K_UNSAFE_ARCHIVE', `${archive}: member "${rawName}" claims ${size} bytes, beyond the end of the archive (truncated or forged); refusing the archive.`, {
        details: {archive, member: rawName, offset, size},
        suggestions: ['If the file was downloaded or copied, compare its size with the original and fetch it again.', 'Otherwise rebuild the archive with a standard exporter.'],
      })
    }
    const algorithms = isDirectory ? [] : [...new Set(options.hashMembers?.(name) ?? [])]
    const hashes: Array<[DigestAlgorithm, Hash]> = algorithms.map((algorithm) => [algorithm, createHash(algorithm)])
    let sinceReport = 0
    const onData =
      hashes.length === 0
        ? undefined
        : (chunk: Buffer) => {
            for (const [, hash] of hashes) hash.update(chunk)
            sinceReport += chunk.length
            if (sinceReport >= PROGRESS_STEP) {
              sinceReport = 0
              options.onProgress?.({...progress(), member: name})
            }
          }
    const got = await source.skip(size, onData)
    if (got < size) {
      throw new H2KError('H2K_UNSAFE_ARCHIVE', `${archive}: member "${rawName}" claims ${size} bytes but the archive ends after ${got} (truncated or forged); refusing the archive.`, {
        details: {archive, member: rawName, offset, size},
        suggestions: ['If the file was downloaded or copied, compare its size with the original and fetch it again.', 'Otherwise rebuild the archive with a standard exporter.'],
      })
    }
    // Padding may legitimately be cut short only at the very end; the missing end marker catches that.
    await source.skip(paddedSize(size) - size)
    if (!isDirectory) members.push({digests: Object.fromEntries(hashes.map(([algorithm, hash]) => [algorithm, hash.digest('hex')])), name, offset, size})
    options.onProgress?.({...progress(), member: name})
  }
  await source.finish()
  return members
}

/**
 * Index an uncompressed tar file (ustar, GNU or pax) without extracting anything: every regular member
 * with its data offset and size, and the digests asked for. Reads headers with positional reads, so
 * members that are not hashed cost nothing; memory stays bounded whatever the archive size.
 *
 * Refuses (H2K_UNSAFE_ARCHIVE) absolute or ".." names, links, devices, FIFOs, sparse members, duplicate
 * names, sizes beyond the end and more than 10,000 members; damaged headers are H2K_INPUT_CORRUPT.
 */
export async function scanTar(path: string, options: ScanTarOptions = {}): Promise<TarMember[]> {
  const archive = options.label ?? path
  const handle = await open(path, 'r')
  try {
    const {size} = await handle.stat()
    const source = new FileTarSource(handle, size, options.signal)
    return await walkTar(source, options, archive, () => ({bytesDone: source.position, bytesTotal: size}))
  } finally {
    await handle.close()
  }
}

export interface ScanTarStreamOptions extends ScanTarOptions {
  /** Write the tar bytes to this file while scanning (created, must not exist), so members can be read in place afterwards. */
  copyTo?: string
  /** Where the input stands, for progress (e.g. compressed bytes read of the gzip file). */
  inputProgress?: () => {bytesDone: number; bytesTotal?: number}
  /** Turn an error the stream raised into an H2KError (default: H2K_INPUT_CORRUPT). */
  describeReadError?: (error: unknown) => H2KError
}

/** The same scan over a stream of tar bytes; offsets are positions in the stream (and in `copyTo`). */
export async function scanTarStream(stream: Readable, options: ScanTarStreamOptions = {}): Promise<TarMember[]> {
  const archive = options.label ?? 'archive stream'
  const describeReadError =
    options.describeReadError ??
    ((error: unknown) => new H2KError('H2K_INPUT_CORRUPT', `${archive}: reading the archive failed: ${(error as Error).message}`, {cause: error}))
  const copy = options.copyTo === undefined ? undefined : await open(options.copyTo, 'wx')
  const source = new StreamTarSource(stream, copy, options.signal, describeReadError)
  try {
    return await walkTar(source, options, archive, () => ({...(options.inputProgress?.() ?? {bytesDone: source.position})}))
  } catch (error) {
    await source.abandon()
    throw error
  } finally {
    await copy?.close()
  }
}


/** Fails the stream with H2K_NO_SPACE once the lease cannot hold more: a gzip bomb stops here, not at a full disk. */
function byteLimit(lease: ExpansionLease, archive: string, target: string, reserveBytes: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      lease.take(chunk.length).then((ok) => {
        if (ok) return done(null, chunk)
        const mib = Math.floor(lease.limit / 1024 ** 2)
        done(
          new H2KError('H2K_NO_SPACE', `${archive}: decompressing it needs more than the ${mib} MiB that can be used in ${dirname(target)} (${Math.round(reserveBytes / 1024 ** 2)} MiB are always left free, shared with the other decompressions running now); refusing to fill the filesystem.`, {
            details: {archive, limitBytes: lease.limit, reserveBytes, target},
            suggestions: ['Free space in the work directory (work_dir, --work-dir), or decompress the archive yourself and convert the plain tar.', 'If the archive is not one you expect, it may be a decompression bomb.'],
          }),
        )
      }, done)
    },
  })
}

export interface ScanGzipTarOptions extends ScanTarOptions {
  /** At most this many uncompressed bytes, whatever the free space. */
  maxExpandedBytes?: number
  /** Free space always left on the target's filesystem (DECOMPRESS_RESERVE_BYTES). */
  reserveBytes?: number
}

/**
 * Decompress a gzip'ed tar once, streaming: scan it and write the uncompressed tar to `tarPath`, where
 * its members can then be read in place at the offsets returned. The uncompressed size is bounded by a
 * lease on the free space of tarPath's filesystem (expansion-budget.ts: shared by every decompression of
 * the process, `reserveBytes` always left free) and by `maxExpandedBytes`. On failure the partial copy is
 * removed and the lease released at once, so the space goes back to the others.
 */
export async function scanGzipTar(gzipPath: string, tarPath: string, options: ScanGzipTarOptions = {}): Promise<TarMember[]> {
  const archive = options.label ?? gzipPath
  throwIfCancelled(options.signal)
  const {size: bytesTotal} = await stat(gzipPath)
  const reserveBytes = options.reserveBytes ?? DECOMPRESS_RESERVE_BYTES
  // Only a copy this call creates is removed on failure (scanTarStream refuses an existing tarPath).
  const existed = await stat(tarPath).then(() => true, () => false)
  const lease = await ExpansionLease.open(dirname(tarPath), {maxBytes: options.maxExpandedBytes, reserveBytes})
  const input = createReadStream(gzipPath)
  const gunzip = createGunzip()
  const bounded = byteLimit(lease, archive, tarPath, reserveBytes)
  input.on('error', (error) => gunzip.destroy(error))
  gunzip.on('error', (error) => bounded.destroy(error))
  input.pipe(gunzip).pipe(bounded)
  let copied = false
  try {
    const members = await scanTarStream(bounded, {
      ...options,
      copyTo: tarPath,
      describeReadError: (error) =>
        isH2KError(error) ? error : new H2KError('H2K_INPUT_CORRUPT', `${archive}: the gzip data is damaged or truncated: ${(error as Error).message}`, {cause: error, details: {archive}}),
      inputProgress: () => ({bytesDone: input.bytesRead, bytesTotal}),
      label: archive,
    })
    copied = true
    return members
  } finally {
    input.destroy()
    gunzip.destroy()
    bounded.destroy()
    // The copy was created here ('wx'): a failed one is ours to remove.
    if (!copied && !existed) await rm(tarPath, {force: true})
    lease.release()
  }
}

export interface ScanArchiveOptions {
  label: string
  signal?: AbortSignal
  /** The archive is gzip-compressed: decompress it once into `tarPath` (bounded, see scanGzipTar). */
  gzip: boolean
  tarPath: string
  /** Only while decompressing (a plain tar is indexed from its headers alone, which is quick): digests to compute on the way, progress. */
  whileDecompressing?: Pick<ScanTarOptions, 'hashMembers' | 'onProgress'>
}

/** A tar read in place, or a gzip'ed tar decompressed once into `tarPath`: the members and where to read them. */
export async function scanArchive(path: string, options: ScanArchiveOptions): Promise<{tarPath: string; members: TarMember[]}> {
  const {label, signal} = options
  if (options.gzip) return {members: await scanGzipTar(path, options.tarPath, {...options.whileDecompressing, label, signal}), tarPath: options.tarPath}
  return {members: await scanTar(path, {label, signal}), tarPath: path}
}
