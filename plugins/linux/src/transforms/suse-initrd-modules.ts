import {DEFAULT_INITRAMFS_DRIVERS, moduleKey, validModules} from './initramfs-drivers.js'
import {ensureShellListItems} from './shell-list-var.js'
import type {TransformResult} from './transform-result.js'

/**
 * Make INITRD_MODULES in /etc/sysconfig/kernel (SUSE) list the drivers. mkinitrd on SLES 11 reads it, and dracut on
 * SLES 12+ still honours it through SUSE's compatibility module; the dracut drop-in (dracutConfFor) covers the
 * rest, so a guest gets both.
 */
export function ensureSuseInitrdModules(text: string, drivers: readonly string[] = DEFAULT_INITRAMFS_DRIVERS): TransformResult {
  const {modules, warnings} = validModules(drivers)
  const reason = 'the SUSE initrd must include these drivers for the root disk to be found on KVM'
  const result = ensureShellListItems(text, 'INITRD_MODULES', modules, {syntax: 'string', keyOf: moduleKey, what: '/etc/sysconfig/kernel', reason})
  return {...result, warnings: [...warnings, ...result.warnings]}
}
