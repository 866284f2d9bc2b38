import {isUnstableDevice} from './device-resolver.js'
import {splitLines} from './text-lines.js'

export interface DeviceMapDecision {
  /** `delete`: remove the file; `keep`: leave it as it is. */
  action: 'delete' | 'keep'
  reason: string
  warnings: string[]
}

const MAPPING = /^\s*\(([^)\s]+)\)\s+(\S+)/

/**
 * Decide what to do with /boot/grub/device.map (or /boot/grub2/device.map). The file pins GRUB drive names to OS
 * device names, `(hd0) /dev/sda`; on KVM /dev/sda is gone (or is another disk), and grub-install/grub-probe then
 * fail or pick the wrong disk. GRUB 2 does not need the file at all (it probes when it is absent), and SUSE's
 * perl-Bootloader and GRUB legacy's `grub-install --recheck` write a fresh one. So when every mapping names an
 * unstable device (floppies count as disposable), deleting the file is the clean fix; rewriting it to /dev/vda
 * would just pin a new guess. A file that maps anything else (multipath /dev/mapper names, image files) was set
 * up on purpose and is kept; so is a file with no mapping at all, which does no harm.
 */
export function rewriteDeviceMap(text: string): DeviceMapDecision {
  const warnings: string[] = []
  let mappings = 0
  const kept: string[] = []
  for (const [index, line] of splitLines(text).entries()) {
    const trimmed = line.body.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    const mapping = MAPPING.exec(line.body)
    if (!mapping) {
      warnings.push(`device.map line ${index + 1}: "${trimmed}" is not a (drive) device mapping.`)
      kept.push(trimmed)
      continue
    }
    mappings++
    const [, drive = '', device = ''] = mapping
    if (!drive.startsWith('fd') && !isUnstableDevice(device, 'stabilize-all')) kept.push(`(${drive}) ${device}`)
  }
  if (mappings === 0) return {action: 'keep', reason: 'device.map maps no drive; it does no harm.', warnings}
  if (kept.length > 0) {
    return {action: 'keep', reason: `device.map maps stable names (${kept.join(', ')}); kept as the guest set it up.`, warnings}
  }
  const reason = 'device.map only maps controller-dependent device names that do not exist on KVM; GRUB probes the disks itself without it.'
  return {action: 'delete', reason, warnings}
}
