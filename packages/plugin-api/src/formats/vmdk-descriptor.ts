import {H2KError} from '../errors/h2k-error.js'

export const EXTENT_ACCESS = ['RW', 'RDONLY', 'NOACCESS'] as const
export type ExtentAccess = (typeof EXTENT_ACCESS)[number]

export const EXTENT_TYPES = ['FLAT', 'SPARSE', 'ZERO', 'VMFS', 'VMFSSPARSE', 'VMFSRDM', 'VMFSRAW', 'SESPARSE'] as const
export type ExtentType = (typeof EXTENT_TYPES)[number]

/** One extent line: `RW 4192256 SPARSE "disk-s001.vmdk"` or `RW 8388608 FLAT "disk-flat.vmdk" 0`. */
export interface VmdkExtent {
  access: ExtentAccess
  /** Length of the extent in 512-byte sectors. */
  sectors: number
  type: ExtentType
  /** The file as the descriptor names it (untrusted); absent only for ZERO extents. */
  filename?: string
  /** Start of the extent's data inside its file, in sectors (FLAT extents; 0 otherwise). */
  offset: number
  /** 1-based line number, for messages. */
  line: number
}

export interface VmdkDescriptor {
  version: number
  /** Content id, lower-case hex. */
  cid?: string
  /** Content id of the parent, lower-case hex; "ffffffff" means no parent. */
  parentCid?: string
  createType: string
  /** The parent disk of a delta (snapshot) disk, as the descriptor names it (untrusted). */
  parentFileNameHint?: string
  encoding?: string
  extents: VmdkExtent[]
  /** The disk database, keys without the "ddb." prefix: adapterType, geometry.cylinders, uuid, ... */
  ddb: Record<string, string>
  /** Every other `key = value` header entry, as written. */
  fields: Record<string, string>
}

/** parentCID value meaning "this disk has no parent". */
export const NO_PARENT_CID = 'ffffffff'

/** Upper bounds that keep a hostile descriptor from costing anything: real ones are a few KiB. */
const MAX_LINES = 10_000
const MAX_EXTENTS = 4096
/** qemu reads at most 511 bytes of an extent file name; a longer one is a broken descriptor. */
const MAX_FILENAME = 511

/** Header keys whose repetition would make the disk ambiguous (which parent? which type?). */
const SINGLE_KEYS = new Set(['version', 'cid', 'parentcid', 'createtype', 'parentfilenamehint', 'encoding'])

const EXTENT_LINE = /^(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/
const KEY_VALUE = /^([A-Za-z][\w.:-]*)\s*=\s*(.*)$/

function unquote(raw: string): string {
  const value = raw.trim()
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) return value.slice(1, -1)
  return value
}

/**
 * Parse a VMDK text descriptor (a separate `.vmdk` file or the one embedded in a sparse extent).
 * Tolerates CRLF line ends, comments, tabs, quoted or bare values and the NUL padding of embedded
 * descriptors. Text that is not a descriptor at all is H2K_INPUT_UNRECOGNIZED; a descriptor with a
 * broken or ambiguous line is H2K_INPUT_CORRUPT; a well-formed extent of an unknown kind is
 * H2K_INPUT_UNSUPPORTED. `source` names the file in messages.
 */
export function parseVmdkDescriptor(text: string, source = 'VMDK descriptor'): VmdkDescriptor {
  // Padding: NULs, possibly with line ends among them (qemu-img's monolithicFlat descriptors end "\0\n\0\0…").
  const body = text.replace(/^\uFEFF/, '').replace(/[\0\s]+$/, '')
  const corrupt = (line: number, why: string): H2KError =>
    new H2KError('H2K_INPUT_CORRUPT', `${source}: line ${line}: ${why}.`, {details: {file: source, line}})
  if (body.includes('\0')) throw new H2KError('H2K_INPUT_CORRUPT', `${source}: the descriptor text contains NUL bytes.`, {details: {file: source}})

  const lines = body.split(/\r\n|\r|\n/)
  if (lines.length > MAX_LINES) throw new H2KError('H2K_INPUT_CORRUPT', `${source}: the descriptor has more than ${MAX_LINES} lines.`, {details: {file: source}})

  const header = new Map<string, {key: string; value: string}>()
  const fields: Record<string, string> = {}
  const ddb: Record<string, string> = {}
  const extents: VmdkExtent[] = []
  let sawSignature = false
  let recognisedLines = 0

  for (const [index, rawLine] of lines.entries()) {
    const number = index + 1
    const line = rawLine.trim()
    if (line.length === 0) continue
    if (line.startsWith('#')) {
      if (/^#\s*Disk\s+DescriptorFile/i.test(line)) sawSignature = true
      continue
    }
    const extent = EXTENT_LINE.exec(line)
    if (extent && (EXTENT_ACCESS as readonly string[]).includes(extent[1]!)) {
      extents.push(parseExtent(extent, number, corrupt, source))
      if (extents.length > MAX_EXTENTS) throw corrupt(number, `more than ${MAX_EXTENTS} extents`)
      recognisedLines++
      continue
    }
    const pair = KEY_VALUE.exec(line)
    if (!pair) {
      // Before anything descriptor-like this is simply not a descriptor; after it, a damaged one.
      if (!sawSignature && recognisedLines === 0) throw unrecognised(source)
      throw corrupt(number, `"${line.slice(0, 80)}" is neither a comment, a "key = value" entry nor an extent`)
    }
    const key = pair[1]!
    const value = unquote(pair[2]!)
    recognisedLines++
    if (key.toLowerCase().startsWith('ddb.')) {
      ddb[key.slice(4)] = value
      continue
    }
    const lower = key.toLowerCase()
    if (SINGLE_KEYS.has(lower)) {
      if (header.has(lower)) throw corrupt(number, `"${key}" appears twice`)
      header.set(lower, {key, value})
    }
    fields[key] = value
  }

  const createType = header.get('createtype')?.value
  if (createType === undefined) {
    if (!sawSignature && extents.length === 0) throw unrecognised(source)
    throw new H2KError('H2K_INPUT_CORRUPT', `${source}: the descriptor has no createType entry.`, {details: {file: source}})
  }
  if (!/^\w+$/.test(createType)) throw new H2KError('H2K_INPUT_CORRUPT', `${source}: createType "${createType}" is not a VMDK disk type.`, {details: {file: source}})
  if (extents.length === 0) throw new H2KError('H2K_INPUT_CORRUPT', `${source}: the descriptor lists no extents (no data files).`, {details: {file: source}})

  const versionText = header.get('version')?.value ?? '1'
  if (!/^\d{1,3}$/.test(versionText)) throw new H2KError('H2K_INPUT_CORRUPT', `${source}: version "${versionText}" is not a number.`, {details: {file: source}})

  const cid = contentId(header.get('cid')?.value, 'CID', source)
  const parentCid = contentId(header.get('parentcid')?.value, 'parentCID', source)
  const hint = header.get('parentfilenamehint')?.value
  if (hint !== undefined && hint.length === 0) throw new H2KError('H2K_INPUT_CORRUPT', `${source}: parentFileNameHint is empty.`, {details: {file: source}})

  const descriptor: VmdkDescriptor = {createType, ddb, extents, fields, version: Number(versionText)}
  if (cid !== undefined) descriptor.cid = cid
  if (parentCid !== undefined) descriptor.parentCid = parentCid
  if (hint !== undefined) descriptor.parentFileNameHint = hint
  const encoding = header.get('encoding')?.value
  if (encoding !== undefined) descriptor.encoding = encoding
  return descriptor
}

function unrecognised(source: string): H2KError {
  return new H2KError('H2K_INPUT_UNRECOGNIZED', `${source} is not a VMDK descriptor (no "# Disk DescriptorFile" header, createType or extent lines).`, {
    details: {file: source},
  })
}

function contentId(value: string | undefined, name: string, source: string): string | undefined {
  if (value === undefined) return undefined
  if (!/^[0-9a-f]{1,8}$/i.test(value)) throw new H2KError('H2K_INPUT_CORRUPT', `${source}: ${name} "${value}" is not an 8-digit hex content id.`, {details: {file: source}})
  return value.toLowerCase().padStart(8, '0')
}

function parseExtent(match: RegExpExecArray, line: number, corrupt: (line: number, why: string) => H2KError, source: string): VmdkExtent {
  const access = match[1] as ExtentAccess
  const sectorsText = match[2]!
  const type = match[3]!.toUpperCase()
  const rest = (match[4] ?? '').trim()
  if (!/^\d{1,16}$/.test(sectorsText)) throw corrupt(line, `extent size "${sectorsText}" is not a number of sectors`)
  const sectors = Number(sectorsText)
  if (!Number.isSafeInteger(sectors) || sectors <= 0) throw corrupt(line, `extent size ${sectorsText} is not a positive number of sectors`)
  if (!(EXTENT_TYPES as readonly string[]).includes(type)) {
    throw new H2KError('H2K_INPUT_UNSUPPORTED', `${source}: line ${line}: extent type "${match[3]}" is not one hyper2kvm knows.`, {details: {file: source, line}})
  }
  const extentType = type as ExtentType
  if (extentType === 'ZERO') {
    if (rest.length > 0) throw corrupt(line, 'a ZERO extent names no file')
    return {access, line, offset: 0, sectors, type: extentType}
  }

  // The name is quoted (it may contain spaces); a bare name without spaces is tolerated.
  let filename: string
  let tail: string
  if (rest.startsWith('"')) {
    const end = rest.indexOf('"', 1)
    if (end < 0) throw corrupt(line, 'the extent file name has no closing quote')
    filename = rest.slice(1, end)
    tail = rest.slice(end + 1).trim()
  } else {
    const bare = /^(\S+)\s*(.*)$/.exec(rest)
    if (!bare) throw corrupt(line, `a ${extentType} extent must name its file`)
    filename = bare[1]!
    tail = bare[2]!.trim()
  }
  if (filename.length === 0) throw corrupt(line, 'the extent file name is empty')
  if (filename.length > MAX_FILENAME) throw corrupt(line, `the extent file name is longer than ${MAX_FILENAME} characters`)

  let offset = 0
  if (tail.length > 0) {
    if (!/^\d{1,16}$/.test(tail)) throw corrupt(line, `"${tail.slice(0, 40)}" after the file name is not a sector offset`)
    offset = Number(tail)
    if (!Number.isSafeInteger(offset)) throw corrupt(line, `extent offset ${tail} is out of range`)
    if (extentType !== 'FLAT' && offset !== 0) throw corrupt(line, `only FLAT extents have an offset, this ${extentType} extent has ${tail}`)
  } else if (extentType === 'FLAT') {
    throw corrupt(line, 'a FLAT extent needs the sector offset of its data after the file name')
  }
  return {access, filename, line, offset, sectors, type: extentType}
}

/** Total virtual size a descriptor describes, in bytes. */
export function descriptorCapacityBytes(descriptor: VmdkDescriptor): number {
  return descriptor.extents.reduce((sum, extent) => sum + extent.sectors, 0) * 512
}
