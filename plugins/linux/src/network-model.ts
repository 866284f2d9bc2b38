import type {GuestSession} from '@hyper2kvm/plugin-api'

import type {NetworkFile} from './network-files.js'
import {
  type MacPin,
  type NamingScheme,
  type NicBinding,
  ifcfgBindings,
  ifupdownBindings,
  netplanBindings,
  netplanPins,
  networkdBindings,
  networkdLinkPin,
  nmKeyfileBindings,
  persistentNetPins,
} from './transforms/index.js'

/** The interfaces a network file configures (.link files and udev rules configure none: they rename). */
export function bindingsOf(file: NetworkFile): NicBinding[] {
  switch (file.kind) {
    case 'netplan':
      return netplanBindings(file.text, file.path)
    case 'ifupdown':
      return ifupdownBindings(file.text, file.path)
    case 'networkmanager':
      return nmKeyfileBindings(file.text, file.path)
    case 'ifcfg':
      return ifcfgBindings(file.text, file.path)
    case 'networkd':
      return networkdBindings(file.text, file.path)
    default:
      return []
  }
}

/** The renames by MAC a network file applies. */
export function pinsOf(file: NetworkFile): MacPin[] {
  if (file.kind === 'persistent-net') return persistentNetPins(file.text)
  if (file.kind === 'netplan') return netplanPins(file.text)
  if (file.kind === 'networkd-link') {
    const pin = networkdLinkPin(file.text)
    return pin ? [pin] : []
  }
  return []
}

const LINK_RULES = ['/usr/lib/udev/rules.d/80-net-setup-link.rules', '/lib/udev/rules.d/80-net-setup-link.rules']
const SLOT_RULES = '/lib/udev/rules.d/80-net-name-slot.rules'

/** How the guest's udev names NICs, and whether it applies systemd .link files (systemd 209 and later). */
export interface GuestNaming {
  scheme: NamingScheme
  linkFiles: boolean
}

async function anyExists(session: GuestSession, paths: readonly string[]): Promise<boolean> {
  for (const path of paths) if (await session.exists(path)) return true
  return false
}

/**
 * How the guest's udev will name the virtio NIC: `kernel` (eth0…) when the kernel command line says
 * net.ifnames=0, when /etc masks udev's naming rule, or when the guest's udev has no predictable naming at all
 * (RHEL 6 and older); `predictable` (enp1s0…) otherwise.
 */
export async function namingOf(session: GuestSession): Promise<GuestNaming> {
  const linkFiles = await anyExists(session, LINK_RULES)
  for (const path of ['/etc/default/grub', '/etc/kernel/cmdline']) {
    const text = ((await session.readFile(path)) ?? '').slice(0, 64 * 1024)
    const active = text.split('\n').filter((line) => !line.trimStart().startsWith('#'))
    if (active.some((line) => /(?:^|[\s"'])net\.ifnames=0(?=$|[\s"'])/.test(line))) return {linkFiles, scheme: 'kernel'}
  }
  if (await session.exists('/etc/udev/rules.d/80-net-setup-link.rules')) return {linkFiles, scheme: 'kernel'}
  return {linkFiles, scheme: linkFiles || (await session.exists(SLOT_RULES)) ? 'predictable' : 'kernel'}
}
