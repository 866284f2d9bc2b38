import {H2KError, type LoaderStage, type ProbeInput, formatNode, readAt, safeFileStem} from '@hyper2kvm/plugin-api'
import {basename, extname} from 'node:path'

const DISK_TYPES: Record<number, string> = {2: 'fixed', 3: 'dynamic', 4: 'differencing'}

/** The VHD footer: a copy at offset 0 for dynamic/differencing disks, always in the last 512 bytes. */
async function readFooter(input: ProbeInput): Promise<Buffer | undefined> {
  if (input.head.subarray(0, 8).toString('latin1') === 'conectix') return input.head.subarray(0, 512)
  if (input.isDirectory || input.size < 512) return undefined
  const tail = await readAt(input.path, input.size - 512, 512)
  return tail.subarray(0, 8).toString('latin1') === 'conectix' ? tail : undefined
}

/**
 * Hyper-V / Azure / Virtual PC VHD (qemu driver `vpc`). The size comes from the footer's current size, as
 * Hyper-V and Azure define it, not from the CHS geometry older tools used.
 */
export const vhdLoader: LoaderStage = {
  description: 'Hyper-V/Azure VHD, fixed and dynamic (qemu vpc)',
  formats: ['vhd'],
  kind: 'loader',
  name: 'vhd',
  async probe(input) {
    const footer = await readFooter(input)
    if (!footer) return null
    return {by: 'content', format: 'vhd', subformat: DISK_TYPES[footer.readUInt32BE(60)] ?? 'unknown'}
  },
  async run(ctx) {
    const {input, claim} = ctx
    if (claim.subformat === 'differencing') {
      throw new H2KError('H2K_INPUT_UNSUPPORTED', `${basename(input.path)} is a differencing VHD; hyper2kvm flattens differencing VHDX (.avhdx) chains, not VHD ones.`, {
        suggestions: ['Merge it into its parent first (Hyper-V: Merge-VHD, or Edit Disk > Merge), or convert the chain to VHDX.'],
      })
    }
    if (claim.subformat === 'unknown') throw new H2KError('H2K_INPUT_UNSUPPORTED', `${basename(input.path)} has a VHD footer with an unknown disk type.`)
    const spec = {...formatNode('vpc', input.path), force_size_calc: 'current_size'}
    return {
      disks: [{files: [input.path], format: 'vhd', label: basename(input.path), spec, subformat: claim.subformat}],
      format: 'vhd',
      input: input.path,
      name: safeFileStem(basename(input.path, extname(input.path))),
      subformat: claim.subformat,
    }
  },
}
