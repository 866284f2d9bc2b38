import type {GuestSession} from '@hyper2kvm/plugin-api'

import {listDir, readBounded} from './guest-queries.js'
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

const CMDLINE_BYTES = 64 * 1024
const GRUB_CFG_BYTES = 1024 * 1024
/** Drop-ins in /etc/default/grub.d looked at (Debian and Ubuntu cloud images set net.ifnames=0 in one). */
const MAX_GRUB_DROPINS = 64
const IFNAMES_OFF = /(?:^|[\s"'])net\.ifnames=0(?=$|[\s"'])/

/** The guest's files that put net.ifnames on the kernel command line, and which of their lines count. */
async function cmdlineSources(session: GuestSession): Promise<Array<{path: string; bytes: number; counts: (line: string) => boolean}>> {
  const active = (line: string) => !line.trimStart().startsWith('#')
  const dropins = (await listDir(session, '/etc/default/grub.d')).filter((n) => /^[\w.-]{1,128}\.cfg$/.test(n)).sort().slice(0, MAX_GRUB_DROPINS)
  return [
    ...['/etc/default/grub', ...dropins.map((n) => `/etc/default/grub.d/${n}`), '/etc/kernel/cmdline'].map((path) => ({bytes: CMDLINE_BYTES, counts: active, path})),
    // The generated config's kernel lines, whatever wrote them.
    ...['/boot/grub/grub.cfg', '/boot/grub2/grub.cfg'].map((path) => ({bytes: GRUB_CFG_BYTES, counts: (line: string) => /^\s*linux(?:16|efi)?\s/.test(line), path})),
  ]
}

/**
 * How the guest's udev will name the virtio NIC: `kernel` (eth0…) when the kernel command line says
 * net.ifnames=0 (/etc/default/grub, its grub.d drop-ins, /etc/kernel/cmdline or grub.cfg's kernel lines; reads
 * bounded, links not followed), when /etc masks udev's naming rule, or when the guest's udev has no predictable naming at all
 * (RHEL 6 and older); `predictable` (enp1s0…) otherwise.
 */
export async function namingOf(session: GuestSession): Promise<GuestNaming> {
  const linkFiles = await anyExists(session, LINK_RULES)
  for (const {bytes, counts, path} of await cmdlineSources(session)) {
    const read = await readBounded(session, path, bytes)
    if (read.state === 'text' && read.text.split('\n').some((line) => counts(line) && IFNAMES_OFF.test(line))) return {linkFiles, scheme: 'kernel'}
  }
  if (await session.exists('/etc/udev/rules.d/80-net-setup-link.rules')) return {linkFiles, scheme: 'kernel'}
  return {linkFiles, scheme: linkFiles || (await session.exists(SLOT_RULES)) ? 'predictable' : 'kernel'}
}
