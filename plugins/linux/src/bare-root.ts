import type {FstabEntry, InspectionRisk} from '@hyper2kvm/plugin-api'

import {isUnstableDevice} from './transforms/index.js'

export interface BareRoot {
  /** The filesystem type libguestfs reads on the whole disk (ext4, xfs, btrfs, ...). */
  fstype?: string
  uuid?: string
  /** The guest's fstab entries (empty when it has none or is not Linux). */
  fstab: readonly FstabEntry[]
  /** Boot loader configs found in the filesystem (e.g. pv-grub's /boot/grub/menu.lst). */
  configs: readonly string[]
}

/**
 * The risk of a root filesystem that is the whole disk (a bare filesystem image: old paravirtual AMIs, Xen
 * exports): nothing in the image can boot it. Says plainly what booting it takes and what the guest itself
 * needs; hyper2kvm installs no boot loader and attempts no boot fix for it.
 */
export function noBootloaderRisk(root: BareRoot): InspectionRisk {
  const fs = root.fstype ? `${root.fstype} ` : ''
  const parts = [
    `The image is a bare ${fs}filesystem with no partition table and no boot loader: it cannot boot on its own; boot it with a kernel and initrd from the host (direct kernel boot) or install a boot loader.`,
    `On virtio the filesystem is the whole disk /dev/vda: the kernel command line needs ${root.uuid ? `root=UUID=${root.uuid} (or root=/dev/vda)` : 'root=/dev/vda'}, and the kernel's initrd needs virtio_blk.`,
  ]
  const rootEntry = root.fstab.find((entry) => entry.mountpoint === '/')
  if (rootEntry && isUnstableDevice(rootEntry.device, 'stabilize-all')) {
    parts.push(`The guest's /etc/fstab mounts / from ${rootEntry.device}, which will not exist: it needs ${root.uuid ? `UUID=${root.uuid}` : '/dev/vda'} there.`)
  }
  const others = root.fstab.filter((entry) => entry.mountpoint !== '/' && isUnstableDevice(entry.device, 'stabilize-all'))
  if (others.length > 0) {
    parts.push(`Its fstab also names ${others.map((entry) => `${entry.device} (${entry.fstype === 'swap' ? 'swap' : entry.mountpoint})`).join(', ')}: separate volumes of the old instance that are not in this image.`)
  }
  if (root.configs.length > 0) parts.push(`${root.configs.join(', ')} ${root.configs.length === 1 ? 'is a config' : 'are configs'} for a boot loader outside the image (such as Xen's pv-grub), which KVM does not have.`)
  parts.push('No fix is attempted: the guest is converted as it is.')
  return {code: 'NO_BOOTLOADER', message: parts.join(' ')}
}
