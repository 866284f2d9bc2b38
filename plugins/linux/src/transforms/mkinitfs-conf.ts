import {DEFAULT_INITRAMFS_DRIVERS, moduleKey} from './initramfs-drivers.js'
import {ensureShellListItems} from './shell-list-var.js'
import type {TransformResult} from './transform-result.js'

// Alpine's mkinitfs packs modules by feature (/etc/mkinitfs/features.d/<feature>.modules), not by name: virtio
// carries virtio_pci/blk/scsi/net, scsi carries sd_mod, ata carries ahci, nvme carries nvme. dm_mod comes with the
// lvm and cryptsetup features, which a guest that needs it already has.
const FEATURE_OF: Record<string, string> = {
  virtio: 'virtio',
  virtio_ring: 'virtio',
  virtio_pci: 'virtio',
  virtio_blk: 'virtio',
  virtio_scsi: 'virtio',
  virtio_net: 'virtio',
  sd_mod: 'scsi',
  ahci: 'ata',
  nvme: 'nvme',
}

/** The mkinitfs features that carry the drivers, in a stable order. */
export function mkinitfsFeaturesFor(drivers: readonly string[] = DEFAULT_INITRAMFS_DRIVERS): string[] {
  const features: string[] = []
  for (const driver of drivers) {
    const feature = FEATURE_OF[moduleKey(driver)]
    if (feature !== undefined && !features.includes(feature)) features.push(feature)
  }
  return features
}

/** Make `features="..."` in /etc/mkinitfs/mkinitfs.conf (Alpine) include the features that carry the drivers. */
export function ensureMkinitfsFeatures(text: string, drivers: readonly string[] = DEFAULT_INITRAMFS_DRIVERS): TransformResult {
  const reason = 'mkinitfs must include these features for the root disk to be found on KVM'
  return ensureShellListItems(text, 'features', mkinitfsFeaturesFor(drivers), {syntax: 'string', what: 'mkinitfs.conf', reason})
}
