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

const PREDICTABLE_RULES = ['/usr/lib/udev/rules.d/80-net-setup-link.rules', '/lib/udev/rules.d/80-net-setup-link.rules', '/lib/udev/rules.d/80-net-name-slot.rules']

/**
 * How the guest's udev will name the virtio NIC: `kernel` (eth0…) when the kernel command line says
 * net.ifnames=0, when /etc masks udev's naming rule, or when the guest's udev has no predictable naming at all
 * (RHEL 6 and older); `predictable` (enp1s0…) otherwise.
 */
export async function namingSchemeOf(session: GuestSession): Promise<NamingScheme> {
  for (const path of ['/etc/default/grub', '/etc/kernel/cmdline']) {
    const text = ((await session.readFile(path)) ?? '').slice(0, 64 * 1024)
    const active = text.split('\n').filter((line) => !line.trimStart().startsWith('#'))
    if (active.some((line) => /(?:^|[\s"'])net\.ifnames=0(?=$|[\s"'])/.test(line))) return 'kernel'
  }
  if (await session.exists('/etc/udev/rules.d/80-net-setup-link.rules')) return 'kernel'
  for (const path of PREDICTABLE_RULES) if (await session.exists(path)) return 'predictable'
  return 'kernel'
}
