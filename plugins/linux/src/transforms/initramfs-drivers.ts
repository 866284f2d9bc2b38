/**
 * Kernel modules the initramfs must carry for the guest to find its disks on KVM: the virtio transport and the
 * block, SCSI and network drivers, plus AHCI and NVMe (the other disk buses a KVM machine type may present), the
 * SCSI disk driver virtio-scsi needs, and device-mapper for LVM roots. Built-in ones are harmless: every initramfs
 * generator skips modules the kernel already has.
 */
export const DEFAULT_INITRAMFS_DRIVERS: readonly string[] = [
  'virtio',
  'virtio_ring',
  'virtio_pci',
  'virtio_blk',
  'virtio_scsi',
  'virtio_net',
  'ahci',
  'nvme',
  'sd_mod',
  'dm_mod',
]

/** modprobe treats '-' and '_' in module names as the same character; so do we when we look for one. */
export function moduleKey(name: string): string {
  return name.replace(/-/g, '_')
}

/** The drivers worth writing: valid module names, first spelling of each, in the given order. */
export function validModules(drivers: readonly string[]): {modules: string[]; warnings: string[]} {
  const modules: string[] = []
  const warnings: string[] = []
  const seen = new Set<string>()
  for (const driver of drivers) {
    if (!/^[A-Za-z0-9_-]+$/.test(driver)) {
      warnings.push(`"${driver}" is not a kernel module name; skipped.`)
      continue
    }
    if (seen.has(moduleKey(driver))) continue
    seen.add(moduleKey(driver))
    modules.push(driver)
  }
  return {modules, warnings}
}

/** The comment put above lines hyper2kvm adds to a guest file, so an administrator knows where they came from. */
export const ADDED_BY = '# added by hyper2kvm for KVM virtio'
