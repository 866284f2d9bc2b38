import type {GuestSession, Inspection} from '@hyper2kvm/plugin-api'

import {parseHash} from './guest-facts.js'
import {type DeviceResolver, type StableIds, deviceOfMountable} from './transforms/index.js'

/**
 * Where a device name the guest uses lives in the appliance. libguestfs already resolved the fstab's
 * names per mountpoint (by-path, by-id, xvd, hd ...); other names (swap, resume=, crypttab) follow the
 * appliance's own naming: every disk is /dev/sdX in the order the disks were added.
 */
function applianceDevice(name: string, byFstab: Map<string, string>): string | undefined {
  const known = byFstab.get(name)
  if (known) return known
  const classic = /^\/dev\/(?:sd|hd|xvd|vd)([a-z]+)(\d*)$/.exec(name)
  if (classic) return `/dev/sd${classic[1]}${classic[2]}`
  const nvme = /^\/dev\/nvme0n(\d+)(?:p(\d+))?$/.exec(name)
  if (nvme) return `/dev/sd${String.fromCharCode(96 + Number(nvme[1]))}${nvme[2] ?? ''}`
  return undefined
}

/**
 * A resolver from guest device names to stable ids, using blkid inside the appliance. The fixers need it
 * synchronously (the text transforms are pure), so every name they may ask about is looked up first.
 */
export async function buildResolver(session: GuestSession, inspection: Inspection, names: Iterable<string>): Promise<DeviceResolver> {
  const byFstab = new Map<string, string>()
  for (const entry of inspection.fstab) {
    // A btrfs subvolume mounted with subvol= is a mountable (btrfsvol:/dev/sda2/@); blkid wants its device.
    const device = inspection.mountpoints[entry.mountpoint]
    if (device) byFstab.set(entry.device, deviceOfMountable(device))
  }
  const ids = new Map<string, StableIds>()
  for (const name of new Set(names)) {
    const device = applianceDevice(name, byFstab)
    if (!device) continue
    try {
      const blkid = parseHash(await session.call('blkid', device))
      ids.set(name, {label: blkid.LABEL, partuuid: blkid.PART_ENTRY_UUID ?? blkid.PARTUUID, uuid: blkid.UUID})
    } catch {
      // a name that does not exist in this guest stays unresolved: the transform warns and leaves it
    }
  }
  return (device) => ids.get(device)
}

/** Every /dev/... token in a text (fstab lines, root=, resume=, crypttab sources): the names to resolve. */
export function deviceNamesIn(...texts: Array<string | null>): string[] {
  const names = new Set<string>()
  for (const text of texts) for (const match of (text ?? '').matchAll(/\/dev\/[\w./:+-]+/g)) names.add(match[0])
  return [...names]
}
