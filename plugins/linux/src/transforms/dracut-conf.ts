import {DEFAULT_INITRAMFS_DRIVERS, validModules} from './initramfs-drivers.js'

/** Where the drop-in goes; dracut reads /etc/dracut.conf.d/*.conf in name order, so 60- lands after distro defaults. */
export const DRACUT_CONF_PATH = '/etc/dracut.conf.d/60-hyper2kvm-virtio.conf'

/**
 * The content of the dracut drop-in that puts the drivers into every initramfs (RHEL, Fedora, SUSE 12+, newer
 * Debian/Ubuntu with dracut). add_drivers installs them even in host-only mode, which is what RHEL builds by
 * default and which would otherwise only pick the drivers of the machine dracut runs on (the appliance, or
 * VMware). The value keeps a leading and a trailing space because dracut concatenates `+=` values as they are.
 */
export function dracutConfFor(drivers: readonly string[] = DEFAULT_INITRAMFS_DRIVERS): string {
  const {modules} = validModules(drivers)
  const comment = '# Written by hyper2kvm: drivers the initramfs needs to find the root disk on KVM (virtio).'
  return `${comment}\nadd_drivers+=" ${modules.join(' ')} "\n`
}
