import {DEFAULT_INITRAMFS_DRIVERS, validModules} from './initramfs-drivers.js'

/** Where the drop-in goes; dracut reads /etc/dracut.conf.d/*.conf in name order, so 60- lands after distro defaults. */
export const DRACUT_CONF_PATH = '/etc/dracut.conf.d/60-hyper2kvm-virtio.conf'

/** What the guest has that a host-only dracut run in the appliance cannot see. */
export interface DracutGuestNeeds {
  /** The guest has swap (fstab) and so may resume from hibernation through it. */
  resume?: boolean
}

/**
 * The content of the dracut drop-in that puts the drivers into every initramfs (RHEL, Fedora, SUSE 12+, newer
 * Debian/Ubuntu with dracut). add_drivers installs them even in host-only mode, which is what RHEL builds by
 * default and which would otherwise only pick the drivers of the machine dracut runs on (the appliance, or
 * VMware). The value keeps a leading and a trailing space because dracut concatenates `+=` values as they are.
 *
 * Host-only detection in the appliance also misses what only the guest's running system shows: no swap is
 * active there, so dracut's resume module was left out and a guest with swap (and resume= on its command line)
 * lost resuming from hibernation: the swap it hibernated to would be activated and overwritten. It is named
 * explicitly when the guest has swap.
 */
export function dracutConfFor(drivers: readonly string[] = DEFAULT_INITRAMFS_DRIVERS, needs: DracutGuestNeeds = {}): string {
  const {modules} = validModules(drivers)
  const lines = ['# Written by hyper2kvm: drivers the initramfs needs to find the root disk on KVM (virtio).', `add_drivers+=" ${modules.join(' ')} "`]
  if (needs.resume) lines.push('# The guest has swap: keep resuming from it (a host-only build in the converter cannot see it).', 'add_dracutmodules+=" resume "')
  return `${lines.join('\n')}\n`
}
