import {H2KError, NO_PARENT_CID, type VmdkDescriptor, type VmdkExtent} from '@hyper2kvm/plugin-api'
import {writeFile} from 'node:fs/promises'

/** An extent whose file name has been checked and resolved to a real path inside the disk's folder. */
export interface ResolvedExtent {
  extent: VmdkExtent
  /** Real, absolute path of the extent file (undefined only for ZERO extents, which we refuse). */
  path: string
  /** Size of the extent file in bytes. */
  size: number
}

/** qemu scans an extent file name with "%511[^\n\r\"]": longer names, quotes or line breaks cannot be said. */
function sayable(path: string): boolean {
  return path.length <= 511 && !/["\r\n\0]/.test(path)
}

/**
 * Write the descriptor qemu will open for a multi-extent disk: only the lines qemu needs, every extent by
 * the absolute real path we validated (so qemu opens exactly those files, whatever the original said),
 * every extent RW (qemu silently skips others, which would shift the disk), and a createType qemu knows
 * ("vmfs" for flat extents: it has no vmfsThin). The parent is not named: the loader gives qemu the
 * backing node itself.
 */
export async function writeSanitizedDescriptor(target: string, descriptor: VmdkDescriptor, extents: readonly ResolvedExtent[], descriptorName: string): Promise<void> {
  const allFlat = extents.every(({extent}) => extent.type === 'FLAT' || extent.type === 'VMFS')
  const lines = [
    '# Disk DescriptorFile',
    // qemu finds these by the first occurrence of "CID" / "parentCID" in the text: they come first, and
    // no name (which could contain those letters) may precede them.
    `CID=${descriptor.cid ?? 'fffffffe'}`,
    `parentCID=${descriptor.parentCid ?? NO_PARENT_CID}`,
    'version=1',
    `createType="${allFlat ? 'vmfs' : 'twoGbMaxExtentSparse'}"`,
    '# Written by hyper2kvm: extent paths validated and made absolute.',
    '',
    '# Extent description',
  ]
  for (const {extent, path} of extents) {
    if (!sayable(path)) {
      throw new H2KError('H2K_INPUT_UNSUPPORTED', `${descriptorName}: the extent path ${JSON.stringify(path)} cannot be written into a descriptor for qemu (quote, line break or over 511 characters).`, {
        details: {descriptor: descriptorName, extent: path},
        suggestions: ['Move the VM files to a folder with a short, plain path.'],
      })
    }
    const flat = extent.type === 'FLAT' || extent.type === 'VMFS'
    lines.push(flat ? `RW ${extent.sectors} FLAT "${path}" ${extent.offset}` : `RW ${extent.sectors} SPARSE "${path}"`)
  }
  lines.push('')
  await writeFile(target, lines.join('\n'), {flag: 'wx', mode: 0o600})
}
