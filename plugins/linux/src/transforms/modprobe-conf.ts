import {DEFAULT_INITRAMFS_DRIVERS, moduleKey} from './initramfs-drivers.js'
import {joinLines, splitLines} from './text-lines.js'
import type {TextEdit, TransformResult} from './transform-result.js'

/**
 * Drivers of the devices a KVM machine presents (q35/pc: virtio, e1000/e1000e/rtl8139/pcnet NICs, AHCI/PIIX/
 * NVMe disks, QXL/bochs/cirrus video, the i6300esb watchdog, USB, the PIIX4 SMBus) and the virtio vsock
 * transport: a modprobe setting that stops one of them makes the guest lose a disk, a NIC or a console.
 */
export const KVM_DRIVERS: readonly string[] = [
  ...DEFAULT_INITRAMFS_DRIVERS,
  'virtio_balloon', 'virtio_console', 'virtio_rng', 'virtio_input', 'virtio_gpu', 'virtio_mmio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev',
  'vmw_vsock_virtio_transport', 'e1000', 'e1000e', '8139cp', '8139too', 'pcnet32', 'ne2k_pci', 'ata_piix', 'sr_mod', 'qxl', 'bochs', 'bochs_drm',
  'cirrus', 'cirrus_qemu', 'i6300esb', 'ehci_hcd', 'ehci_pci', 'uhci_hcd', 'xhci_hcd', 'xhci_pci', 'i2c_piix4', 'ptp_kvm',
]

/** The comment put in front of a line this transform turns off (so a reader sees why, and a second run leaves it). */
export const DISABLED_PREFIX = '# disabled by hyper2kvm (VMware Tools on KVM): '

const DIRECTIVES = new Set(['alias', 'blacklist', 'install', 'options', 'remove', 'softdep'])

/** Does this directive stop a KVM driver from loading (a blacklist, an install override, an `alias … off`)? */
function stopsKvmDriver(words: string[], kvm: ReadonlySet<string>): string | undefined {
  const [directive, first, second] = words
  if (!first) return undefined
  if ((directive === 'blacklist' || directive === 'install') && kvm.has(moduleKey(first))) return first
  if (directive === 'alias' && second === 'off' && kvm.has(moduleKey(first))) return first
  return undefined
}

/**
 * Turn off, as comments, the modprobe settings that would hurt on KVM: in VMware Tools' own file
 * (`vmwareOwned`: /etc/modprobe.d/vmware-*.conf) every directive (they exist for VMware's devices: pcnet32
 * rerouted to vmxnet, blacklists); in any other file only those that stop a KVM driver. Continued lines
 * (ending in a backslash) are one setting. Nothing of the file's text is repeated in the reasons except the
 * module names we matched against our own list.
 */
export function disableModprobeSettings(text: string, options: {vmwareOwned: boolean; drivers?: readonly string[]}): TransformResult {
  const kvm = new Set([...KVM_DRIVERS, ...(options.drivers ?? [])].map(moduleKey))
  const lines = splitLines(text)
  const edits: TextEdit[] = []
  for (let index = 0; index < lines.length; index++) {
    let last = index
    while (lines[last]!.body.endsWith('\\') && last + 1 < lines.length) last++
    const logical = lines.slice(index, last + 1).map((l) => l.body.replace(/\\$/, ' ')).join(' ')
    const words = logical.trim().split(/\s+/)
    const directive = words[0] ?? ''
    if (DIRECTIVES.has(directive)) {
      const stopped = stopsKvmDriver(words, kvm)
      const reason = stopped !== undefined ? `${directive} of ${moduleKey(stopped)}, a driver KVM's devices need` : options.vmwareOwned ? `VMware Tools' ${directive} setting, for VMware's devices` : undefined
      if (reason !== undefined) {
        for (let at = index; at <= last; at++) {
          const before = lines[at]!.body
          lines[at]!.body = `${DISABLED_PREFIX}${before}`
          edits.push({after: lines[at]!.body, before, line: at + 1, reason})
        }
      }
    }
    index = last
  }
  return {edits, text: edits.length === 0 ? text : joinLines(lines), warnings: []}
}
