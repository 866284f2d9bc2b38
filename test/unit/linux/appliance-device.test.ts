import assert from 'node:assert/strict'

import {applianceDevice, deviceOfMountable} from '../../../plugins/linux/src/transforms/appliance-device.js'

// libguestfs names a btrfs subvolume mounted with subvol= `btrfsvol:<device>/<subvolume>` in inspect-get-mountpoints;
// the fixers resolve fstab's /dev/sda2 through that map and ask blkid about it, which only answers for the device.
// Before deviceOfMountable, blkid got the mountable, failed, and fstab, root= and resume= kept /dev/sda2.
const CASES: Array<{mountable: string; device: string; why: string}> = [
  {device: '/dev/sda2', mountable: 'btrfsvol:/dev/sda2/@', why: 'Debian/Ubuntu installer root subvolume'},
  {device: '/dev/sda2', mountable: 'btrfsvol:/dev/sda2/@home', why: '/home subvolume on the same device'},
  {device: '/dev/sda3', mountable: 'btrfsvol:/dev/sda3/@/.snapshots/1/snapshot', why: 'SUSE snapper root: the subvolume has slashes'},
  {device: '/dev/sdb1', mountable: 'btrfsvol:/dev/sdb1/root', why: 'Fedora root subvolume on a second disk'},
  {device: '/dev/vda2', mountable: 'btrfsvol:/dev/vda2/home', why: 'a virtio name (already KVM)'},
  {device: '/dev/nvme0n1p3', mountable: 'btrfsvol:/dev/nvme0n1p3/@', why: 'NVMe partition'},
  {device: '/dev/md0', mountable: 'btrfsvol:/dev/md0/data', why: 'md RAID'},
  {device: '/dev/mapper/luks-1234', mountable: 'btrfsvol:/dev/mapper/luks-1234/@', why: 'device-mapper (opened LUKS)'},
  {device: '/dev/vg0/root', mountable: 'btrfsvol:/dev/vg0/root/@', why: 'LVM logical volume: /dev/VG/LV'},
  {device: '/dev/sda1', mountable: '/dev/sda1', why: 'a plain device is left as it is'},
  {device: '/dev/vg0/root', mountable: '/dev/vg0/root', why: 'a plain logical volume is left as it is'},
]

describe('deviceOfMountable: the block device behind a libguestfs mountable', () => {
  for (const {device, mountable, why} of CASES) {
    it(`${mountable} → ${device} (${why})`, () => assert.equal(deviceOfMountable(mountable), device))
  }
})

// The names fstab, crypttab, root= and resume= use, mapped to the appliance's device when (and only when) that
// device is there: blkid on a missing one fails, and a failed guestfish command ends the listener, so a stale
// /dev/sdb1 in a grub.cfg or an fstab line for a disk not converted with this one used to end the job
// ("guestfish: remote: looks like the server is not running") instead of leaving that line with a warning.
const PRESENT = new Set(['/dev/sda1', '/dev/sda2', '/dev/sda3', '/dev/sdb1', '/dev/vg0/root'])
const BY_FSTAB = new Map([
  ['/dev/disk/by-path/pci-0000:03:00.0-scsi-0:0:0:0-part1', '/dev/sda1'],
  ['UUID=never-asked', '/dev/sda2'],
  ['/dev/sdc1', '/dev/sdc1'],
])
const NAMES: Array<{name: string; device: string | undefined; why: string}> = [
  {device: '/dev/sda2', name: '/dev/sda2', why: 'a VMware SCSI name that is there'},
  {device: '/dev/sda3', name: '/dev/sda3', why: 'swap, not in the mountpoint map, found by its kernel name'},
  {device: '/dev/sda1', name: '/dev/disk/by-path/pci-0000:03:00.0-scsi-0:0:0:0-part1', why: 'libguestfs resolved it from fstab'},
  {device: '/dev/sdb1', name: '/dev/hdb1', why: 'IDE name: the appliance calls every disk sdX'},
  {device: '/dev/sdb1', name: '/dev/nvme0n2p1', why: 'NVMe namespace 2 is the second disk'},
  {device: undefined, name: '/dev/sdb2', why: 'a partition the second disk does not have (stale grub.cfg root=)'},
  {device: undefined, name: '/dev/sdd1', why: 'a data disk that was not converted with this one'},
  {device: undefined, name: '/dev/sdc1', why: 'mapped through fstab but not present'},
  {device: undefined, name: '/dev/disk/by-id/wwn-0x5000c29', why: 'a by-id name libguestfs did not resolve'},
]

describe('applianceDevice: a guest device name → the appliance device blkid is asked about, or nothing', () => {
  for (const {device, name, why} of NAMES) {
    it(`${name} → ${device ?? 'not asked'} (${why})`, () => assert.equal(applianceDevice(name, BY_FSTAB, PRESENT), device))
  }
})
