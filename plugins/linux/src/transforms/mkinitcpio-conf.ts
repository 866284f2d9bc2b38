import {DEFAULT_INITRAMFS_DRIVERS, moduleKey, validModules} from './initramfs-drivers.js'
import {ensureShellListItems} from './shell-list-var.js'
import type {TransformResult} from './transform-result.js'

/**
 * Make MODULES in /etc/mkinitcpio.conf (Arch and derivatives) list the drivers. mkinitcpio always includes MODULES,
 * whatever the autodetect hook found on the machine it runs on. Both the array syntax `MODULES=(...)` (mkinitcpio
 * 0.20 and later) and the old string syntax `MODULES="..."` are extended in place; the last assignment is the
 * one edited because the file is sourced by bash and the last one wins.
 */
export function ensureMkinitcpioModules(text: string, drivers: readonly string[] = DEFAULT_INITRAMFS_DRIVERS): TransformResult {
  const {modules, warnings} = validModules(drivers)
  const reason = 'mkinitcpio must include these drivers for the root disk to be found on KVM'
  const result = ensureShellListItems(text, 'MODULES', modules, {syntax: 'array', keyOf: moduleKey, what: 'mkinitcpio.conf', reason})
  return {...result, warnings: [...warnings, ...result.warnings]}
}
