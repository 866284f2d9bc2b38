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

/**
 * Where a device name the guest uses lives in the appliance, if it is there at all. libguestfs already resolved
 * the fstab's names per mountpoint (by-path, by-id, xvd, hd ...: `byFstab`); other names (swap, resume=,
 * crypttab) follow the appliance's own naming: every disk is /dev/sdX in the order the disks were added. A name
 * whose appliance device is not in `present` (libguestfs' list-filesystems: every partition, LV and md device)
 * is not asked about: a disk that was not converted with this one, a partition that no longer exists. Asking
 * blkid anyway fails, and a failed command ends the guestfish listener, i.e. the whole job.
 */
export function applianceDevice(name: string, byFstab: ReadonlyMap<string, string>, present: ReadonlySet<string>): string | undefined {
  const device = byFstab.get(name) ?? kernelNameInAppliance(name)
  return device !== undefined && present.has(device) ? device : undefined
}

function kernelNameInAppliance(name: string): string | undefined {
  const classic = /^\/dev\/(?:sd|hd|xvd|vd)([a-z]+)(\d*)$/.exec(name)
  if (classic) return `/dev/sd${classic[1]}${classic[2]}`
  const nvme = /^\/dev\/nvme0n(\d+)(?:p(\d+))?$/.exec(name)
  if (nvme) return `/dev/sd${String.fromCharCode(96 + Number(nvme[1]))}${nvme[2] ?? ''}`
  return undefined
}
