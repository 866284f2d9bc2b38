import {type LoaderStage, type ProbeInput, detectImageFormat, formatNode, safeFileStem} from '@hyper2kvm/plugin-api'
import {basename, extname} from 'node:path'

const RAW_EXTENSIONS = new Set(['.raw', '.img', '.dd', '.bin'])

/** A partition table is the only content a raw disk reliably shows: MBR boot signature or a GPT header. */
function partitionTable(head: Buffer): 'mbr' | 'gpt' | undefined {
  if (head.length >= 520 && head.subarray(512, 520).toString('latin1') === 'EFI PART') return 'gpt'
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) return 'mbr'
  return undefined
}

/**
 * Raw disks have no header, so this loader claims by content only when it sees a partition table and by
 * extension otherwise, and never claims anything another format's magic identifies.
 */
export const rawLoader: LoaderStage = {
  description: 'Raw disk images (.raw, .img, .dd, .bin), recognised by partition table or extension',
  formats: ['raw', 'img'],
  kind: 'loader',
  name: 'raw',
  priority: -10,
  probe(input: ProbeInput) {
    if (input.isDirectory || detectImageFormat(input.head) !== null) return null
    const table = partitionTable(input.head)
    if (table) return {by: 'content', format: 'raw', subformat: table}
    if (RAW_EXTENSIONS.has(input.extension)) return {by: 'extension', format: 'raw'}
    return null
  },
  async run(ctx) {
    const {input, claim} = ctx
    if (input.size % 512 !== 0) ctx.warn('RAW_SIZE_UNALIGNED', `${basename(input.path)} is ${input.size} bytes, not a multiple of 512: the last partial sector is kept as is.`)
    return {
      disks: [{files: [input.path], format: 'raw', label: basename(input.path), spec: formatNode('raw', input.path), subformat: claim.subformat}],
      format: 'raw',
      input: input.path,
      name: safeFileStem(basename(input.path, extname(input.path))),
      subformat: claim.subformat,
    }
  },
}
