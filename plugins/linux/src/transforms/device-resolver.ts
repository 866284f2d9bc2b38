/** Stable identifiers of a block device as seen in the guest (from blkid in the appliance). */
export interface StableIds {
  uuid?: string
  partuuid?: string
  label?: string
}

/**
 * Given a device spec as written in a guest file (e.g. /dev/sda1, /dev/hdb2, /dev/xvda1, /dev/disk/by-path/...,
 * /dev/disk/by-id/...), return its stable ids, or undefined if unknown.
 */
export type DeviceResolver = (device: string) => StableIds | undefined

/**
 * How much of fstab to touch: every controller-dependent name, only /dev/disk/by-path names (the ones that break
 * for certain when the controller changes), or nothing.
 */
export type FstabMode = 'stabilize-all' | 'bypath-only' | 'noop'

/** Where a stable spec is going to be written; each place quotes (or cannot quote) a label differently. */
export type SpecTarget = 'fstab' | 'crypttab' | 'cmdline'

// Kernel names that depend on the disk controller and probe order: SCSI/SATA/SAS (VMware pvscsi, LSI, Hyper-V
// storvsc), IDE, Xen, virtio itself (order can change with more disks), NVMe and the old HP Smart Array driver.
const KERNEL_NAME = /^\/dev\/(?:(?:sd|hd|xvd|vd)[a-z]+\d*|nvme\d+n\d+(?:p\d+)?|cciss\/.+)$/
const BY_PATH = /^\/dev\/disk\/by-path\/./
const BY_ID = /^\/dev\/disk\/by-id\/(.+)$/
// by-id names made by device-mapper, md and LVM come from metadata on the disk, not from the controller, so they
// survive the move; ata-VMware_..., scsi-36000c29..., wwn-... do not.
const STABLE_BY_ID = /^(?:dm-name-|dm-uuid-|md-name-|md-uuid-|lvm-pv-uuid-)/

/**
 * Whether a device spec names a disk by something that changes when the guest moves to virtio. UUID=, LABEL=,
 * PARTUUID=, PARTLABEL=, /dev/mapper, LVM /dev/<vg>/<lv>, md, dm-N, /dev/disk/by-uuid|by-label|by-partuuid, network
 * sources and pseudo file systems never are: none of them matches the patterns below. Bind mounts are the
 * caller's business (the spec alone does not say it is one).
 */
export function isUnstableDevice(device: string, mode: FstabMode): boolean {
  if (mode === 'noop') return false
  if (BY_PATH.test(device)) return true
  if (mode === 'bypath-only') return false
  if (KERNEL_NAME.test(device)) return true
  const byId = BY_ID.exec(device)
  return byId !== null && !STABLE_BY_ID.test(byId[1] ?? '')
}

// blkid prints UUIDs as hex with dashes (ext4, xfs, btrfs, swap, LUKS), XXXX-XXXX (FAT) or 16 hex digits (NTFS);
// PARTUUIDs as a GPT GUID or <disk signature>-<NN> (MBR). Anything else came from a confused resolver.
const ID_VALUE = /^[0-9A-Za-z][0-9A-Za-z._-]*$/
// A label on a kernel command line ends up inside a shell-quoted GRUB variable and a space-separated argument
// list: anything that needs quoting in either is refused rather than escaped.
const CMDLINE_UNSAFE_LABEL = /[\s"'\\$`;&|<>(){}#]/
const CONTROL = /[\u0000-\u0008\u000A-\u001F\u007F]/

/**
 * The spec to write instead of an unstable device: UUID= (what installers and grub-mkconfig write), else
 * PARTUUID=, else LABEL=; undefined when nothing usable is known, and the caller then leaves the line alone.
 * fstab escapes blanks in a label the way getmntent(3) reads them (\040); crypttab has no escapes and the kernel
 * command line has no safe quoting through GRUB, so a label with blanks is skipped there.
 */
export function stableSpec(ids: StableIds, target: SpecTarget = 'fstab'): string | undefined {
  if (ids.uuid !== undefined && ID_VALUE.test(ids.uuid)) return `UUID=${ids.uuid}`
  if (ids.partuuid !== undefined && ID_VALUE.test(ids.partuuid)) return `PARTUUID=${ids.partuuid}`
  const label = ids.label
  if (label === undefined || label === '' || CONTROL.test(label)) return undefined
  if (target === 'fstab') return `LABEL=${escapeFstabField(label)}`
  if (target === 'crypttab') return /[\s#]/.test(label) ? undefined : `LABEL=${label}`
  return CMDLINE_UNSAFE_LABEL.test(label) ? undefined : `LABEL=${label}`
}

/** Octal escapes getmntent(3) undoes in an fstab field: space, tab, newline, backslash. */
export function escapeFstabField(value: string): string {
  return value.replace(/[\\ \t\n]/g, (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`)
}

/** The field as mount sees it: `\040` back to a space, and so on. */
export function unescapeFstabField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))
}

/** A short account of why a device name will not survive the move, for edit reasons. */
export function whyUnstable(device: string): string {
  if (BY_PATH.test(device)) return `${device} names the disk by its controller path, which is different on KVM`
  if (BY_ID.test(device)) return `${device} names the disk by its controller's id for it, which is different on KVM`
  if (device.startsWith('/dev/vd')) return `${device} names the disk by probe order, which changes when disks are added or reordered`
  return `${device} names the disk by controller and probe order (it becomes /dev/vdX on virtio)`
}
