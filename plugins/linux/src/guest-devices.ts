import type {GuestSession, Inspection} from '@hyper2kvm/plugin-api'

import {parseHash} from './guest-facts.js'
import {type DeviceResolver, type StableIds, applianceDevice, deviceOfMountable} from './transforms/index.js'

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
  const present = new Set(Object.keys(parseHash(await session.call('list-filesystems'))).map(deviceOfMountable))
  const ids = new Map<string, StableIds>()
  for (const name of new Set(names)) {
    // a name that is not in this guest stays unresolved: the transform warns and leaves it
    const device = applianceDevice(name, byFstab, present)
    if (!device) continue
    const blkid = parseHash(await session.call('blkid', device))
    ids.set(name, {label: blkid.LABEL, partuuid: blkid.PART_ENTRY_UUID ?? blkid.PARTUUID, uuid: blkid.UUID})
  }
  return (device) => ids.get(device)
}

/** Every /dev/... token in a text (fstab lines, root=, resume=, crypttab sources): the names to resolve. */
export function deviceNamesIn(...texts: Array<string | null>): string[] {
  const names = new Set<string>()
  for (const text of texts) for (const match of (text ?? '').matchAll(/\/dev\/[\w./:+-]+/g)) names.add(match[0])
  return [...names]
}
