import assert from 'node:assert/strict'

import {deviceOfMountable} from '../../../plugins/linux/src/transforms/appliance-device.js'

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
