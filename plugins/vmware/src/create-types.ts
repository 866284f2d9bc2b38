import {H2KError} from '@hyper2kvm/plugin-api'

/**
 * Descriptor createType values a text descriptor may carry. The ESXi flat variants (vmfs, vmfsThin,
 * vmfsPreallocated, vmfsEagerZeroedThick) all keep their data in one plain "-flat.vmdk" file; qemu only
 * knows "vmfs", which is why flat disks are opened as raw slices or through a sanitized descriptor.
 */
const READABLE = new Set([
  'monolithicSparse',
  'streamOptimized',
  'monolithicFlat',
  'twoGbMaxExtentSparse',
  'twoGbMaxExtentFlat',
  'vmfs',
  'vmfsThin',
  'vmfsPreallocated',
  'vmfsEagerZeroedThick',
])

const WHY_NOT: Record<string, {what: string; suggestion: string}> = {
  fullDevice: {suggestion: 'Copy the device into an image file first (dd or vmkfstools -i).', what: 'a disk backed by a whole physical device'},
  partitionedDevice: {suggestion: 'Copy the device into an image file first (dd or vmkfstools -i).', what: 'a disk backed by partitions of a physical device'},
  seSparse: {suggestion: 'Consolidate the VM snapshots on ESXi (Snapshots → Delete All) and copy the disk again.', what: 'an ESXi space-efficient snapshot delta (seSparse)'},
  vmfsPassthroughRawDeviceMap: {suggestion: 'Clone the RDM to a virtual disk: vmkfstools -i disk.vmdk -d thin out.vmdk', what: 'a raw device mapping (its data lives on a SAN LUN)'},
  vmfsRaw: {suggestion: 'Clone the RDM to a virtual disk: vmkfstools -i disk.vmdk -d thin out.vmdk', what: 'a raw device mapping (its data lives on a SAN LUN)'},
  vmfsRawDeviceMap: {suggestion: 'Clone the RDM to a virtual disk: vmkfstools -i disk.vmdk -d thin out.vmdk', what: 'a raw device mapping (its data lives on a SAN LUN)'},
  vmfsSparse: {suggestion: 'Consolidate the VM snapshots on ESXi (Snapshots → Delete All) and copy the disk again.', what: 'an ESXi snapshot delta (vmfsSparse)'},
}

/** Refuse a createType hyper2kvm cannot convert, with the reason and what to do on the source side. */
export function requireReadableCreateType(createType: string, descriptorName: string): void {
  if (READABLE.has(createType)) return
  const known = WHY_NOT[createType]
  throw new H2KError(
    'H2K_INPUT_UNSUPPORTED',
    known ? `${descriptorName} describes ${known.what}, which hyper2kvm cannot convert.` : `${descriptorName} has createType "${createType}", which hyper2kvm does not read.`,
    {details: {createType, descriptor: descriptorName}, ...(known ? {suggestions: [known.suggestion]} : {})},
  )
}
