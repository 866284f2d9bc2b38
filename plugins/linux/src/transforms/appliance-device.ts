/**
 * The block device behind a libguestfs mountable. Inspection names a btrfs subvolume mounted with subvol= in
 * fstab `btrfsvol:<device>/<subvolume>` (e.g. btrfsvol:/dev/sda2/@); blkid and everything else that asks about
 * the file system needs <device>. libguestfs builds these from its canonical device names: /dev/sdX[N] (also
 * hd/vd/xvd), /dev/mdN, /dev/nvmeXnY[pZ], /dev/dm-N and /dev/mapper/NAME are one path component after /dev,
 * LVM logical volumes are /dev/VG/LV; whatever follows is the subvolume (which may itself contain slashes, as
 * SUSE's @/.snapshots/1/snapshot does). Anything that is not a btrfsvol mountable is returned as it is.
 */
export function deviceOfMountable(mountable: string): string {
  const prefix = 'btrfsvol:'
  if (!mountable.startsWith(prefix)) return mountable
  const path = mountable.slice(prefix.length)
  const single = /^\/dev\/(?:(?:sd|hd|vd|xvd)[a-z]+\d*|md\d+|nvme\d+n\d+(?:p\d+)?|dm-\d+|mapper\/[^/]+)(?=\/)/.exec(path)
  if (single) return single[0]
  const lvm = /^\/dev\/[^/]+\/[^/]+(?=\/)/.exec(path)
  return lvm ? lvm[0] : path
}
