import {H2KError} from '../errors/h2k-error.js'

/** Tar works in 512-byte blocks: headers are one block, member data is padded to a whole block. */
export const TAR_BLOCK = 512

/** One parsed ustar/GNU/v7 header block, before pax or GNU long-name records are applied. */
export interface TarHeader {
  name: string
  /** The typeflag character; "\0" (old regular file) is reported as "0". */
  type: string
  size: number
  linkName: string
  format: 'ustar' | 'gnu' | 'v7'
}

export function corruptArchive(message: string, offset: number): H2KError {
  return new H2KError('H2K_INPUT_CORRUPT', message, {details: {offset}})
}

export function paddedSize(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK
}

export function isZeroBlock(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false
  return true
}

function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length)
  const end = field.indexOf(0)
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8')
}

/**
 * A numeric header field: octal digits (space/NUL padded), or GNU/star base-256 when the high bit of the
 * first byte is set, which is how tar stores member sizes of 8 GiB and more. Negative base-256 values and
 * anything beyond 2^53 are refused: no genuine member size is either.
 */
function numericField(block: Buffer, start: number, length: number, what: string, offset: number): number {
  const field = block.subarray(start, start + length)
  const first = field[0] ?? 0
  if (first & 0x80) {
    if (first === 0xff) throw corruptArchive(`Tar header at offset ${offset} has a negative ${what}.`, offset)
    let value = BigInt(first & 0x7f)
    for (const byte of field.subarray(1)) value = (value << 8n) | BigInt(byte)
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corruptArchive(`Tar header at offset ${offset} has an impossible ${what}.`, offset)
    return Number(value)
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '')
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) throw corruptArchive(`Tar header at offset ${offset} has a malformed ${what} field.`, offset)
  const value = Number.parseInt(text, 8)
  if (!Number.isSafeInteger(value)) throw corruptArchive(`Tar header at offset ${offset} has an impossible ${what}.`, offset)
  return value
}

/**
 * Historic tars summed signed chars, POSIX sums unsigned ones; both count the checksum field itself as
 * eight spaces. A header matching neither is damage (or not a tar at all).
 */
function checksumMatches(block: Buffer, stored: number): boolean {
  let unsigned = 0
  let signed = 0
  for (let index = 0; index < TAR_BLOCK; index++) {
    const byte = index >= 148 && index < 156 ? 0x20 : (block[index] ?? 0)
    unsigned += byte
    signed += byte > 127 ? byte - 256 : byte
  }
  return stored === unsigned || stored === signed
}

function headerFormat(block: Buffer): TarHeader['format'] {
  const magic = block.subarray(257, 265).toString('latin1')
  if (magic === 'ustar  \0') return 'gnu'
  if (magic.startsWith('ustar')) return 'ustar'
  return 'v7'
}

/** Parse and checksum-validate one header block read at `offset` of the tar stream. */
export function parseTarHeader(block: Buffer, offset: number): TarHeader {
  if (block.length < TAR_BLOCK) throw corruptArchive(`The archive ends inside a tar header at offset ${offset}: it is truncated.`, offset)
  const storedChecksum = numericField(block, 148, 8, 'checksum', offset)
  if (!checksumMatches(block, storedChecksum)) {
    throw corruptArchive(`Tar header at offset ${offset} has a bad checksum: the archive is damaged or not a tar file.`, offset)
  }
  const format = headerFormat(block)
  const rawType = String.fromCharCode(block[156] ?? 0)
  const type = rawType === '\0' ? '0' : rawType
  let name = cString(block, 0, 100)
  // Only POSIX ustar has the 155-byte name prefix; GNU keeps access/change times in the same bytes.
  if (format === 'ustar') {
    const prefix = cString(block, 345, 155)
    if (prefix !== '') name = `${prefix}/${name}`
  }
  return {
    format,
    linkName: cString(block, 157, 100),
    name,
    size: numericField(block, 124, 12, 'size', offset),
    type,
  }
}

/**
 * Parse a pax extended header body: records of the form "<length> <key>=<value>\n", where length counts
 * the whole record in bytes. Any inconsistency is corruption; values are UTF-8.
 */
export function parsePaxRecords(data: Buffer, offset: number): Map<string, string> {
  const records = new Map<string, string>()
  let position = 0
  while (position < data.length) {
    // Some writers pad the body with NULs after the last record.
    if (data[position] === 0) break
    const space = data.indexOf(0x20, position)
    const lengthText = space === -1 ? '' : data.subarray(position, space).toString('latin1')
    if (!/^[0-9]{1,9}$/.test(lengthText)) throw corruptArchive(`Malformed pax header record at offset ${offset}.`, offset)
    const length = Number.parseInt(lengthText, 10)
    const end = position + length
    if (end > data.length || end <= space + 1 || data[end - 1] !== 0x0a) {
      throw corruptArchive(`Malformed pax header record at offset ${offset}.`, offset)
    }
    const record = data.subarray(space + 1, end - 1).toString('utf8')
    const equals = record.indexOf('=')
    if (equals <= 0) throw corruptArchive(`Malformed pax header record at offset ${offset}.`, offset)
    records.set(record.slice(0, equals), record.slice(equals + 1))
    position = end
  }
  return records
}

/** A pax `size` value: plain decimal digits, within 2^53. */
export function paxSize(value: string, offset: number): number {
  const size = /^[0-9]{1,16}$/.test(value) ? Number.parseInt(value, 10) : Number.NaN
  if (!Number.isSafeInteger(size)) throw corruptArchive(`Pax header at offset ${offset} has a malformed size "${value}".`, offset)
  return size
}
