import {type BareFilesystem, type LoaderStage, type ProbeInput, type Source, detectBareFilesystem, detectImageFormat, formatNode, safeFileStem} from '@hyper2kvm/plugin-api'
import {basename, extname} from 'node:path'

// .ami: a raw AMI volume saved under its image's name (a bare filesystem on old paravirtual AMIs). Only an
// extension claim: an .ami that is an export tarball is the aws plugin's, which claims it by content.
const RAW_EXTENSIONS = new Set(['.raw', '.img', '.dd', '.bin', '.ami'])

/** A partition table is what a raw disk usually shows: MBR boot signature or a GPT header. */
function partitionTable(head: Buffer): 'mbr' | 'gpt' | undefined {
  if (head.length >= 520 && head.subarray(512, 520).toString('latin1') === 'EFI PART') return 'gpt'
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) return 'mbr'
  return undefined
}

function mib(bytes: bigint | number): string {
  return `${(Number(bytes) / 1024 / 1024).toFixed(1)} MiB`
}

/** What the report says about a bare filesystem, and the warning when its superblock claims more than the image holds. */
function describeBareFilesystem(ctx: Parameters<LoaderStage['run']>[0], found: BareFilesystem): string[] {
  const notes = [`a bare ${found.type} filesystem: no partition table (and so no boot loader) in the image`]
  if (found.bytes > BigInt(ctx.input.size)) {
    ctx.warn(
      'BARE_FS_TRUNCATED',
      `${basename(ctx.input.path)} is ${mib(ctx.input.size)}, but its ${found.type} superblock says the filesystem spans ${mib(found.bytes)}: the image is cut short; it is converted as it is, and the guest may not mount it.`,
    )
  }
  return notes
}

/**
 * Raw disks have no header, so this loader claims by content when it sees a partition table or, with none,
 * the superblock of a filesystem that fills the whole image (ext2/3/4, XFS, btrfs: a bare filesystem), and by
 * extension otherwise. It never claims anything another format's magic identifies.
 */
export const rawLoader: LoaderStage = {
  description: 'Raw disk images (.raw, .img, .dd, .bin, .ami), recognised by partition table, by a bare ext2/3/4, XFS or btrfs filesystem, or by extension',
  formats: ['raw', 'img', 'ami'],
  kind: 'loader',
  name: 'raw',
  priority: -10,
  probe(input: ProbeInput) {
    if (input.isDirectory || detectImageFormat(input.head) !== null) return null
    const table = partitionTable(input.head)
    if (table) return {by: 'content', format: 'raw', subformat: table}
    const filesystem = detectBareFilesystem(input.head)
    if (filesystem) return {by: 'content', format: 'raw', subformat: filesystem.type}
    if (RAW_EXTENSIONS.has(input.extension)) return {by: 'extension', format: 'raw'}
    return null
  },
  async run(ctx) {
    const {input, claim} = ctx
    if (input.size % 512 !== 0) ctx.warn('RAW_SIZE_UNALIGNED', `${basename(input.path)} is ${input.size} bytes, not a multiple of 512: the last partial sector is kept as is.`)
    const filesystem = claim.by === 'content' && !partitionTable(input.head) ? detectBareFilesystem(input.head) : null
    const source: Source = {
      disks: [{files: [input.path], format: 'raw', label: basename(input.path), spec: formatNode('raw', input.path), subformat: claim.subformat}],
      format: 'raw',
      input: input.path,
      name: safeFileStem(basename(input.path, extname(input.path))),
      subformat: claim.subformat,
    }
    if (filesystem) source.notes = describeBareFilesystem(ctx, filesystem)
    return source
  },
}
