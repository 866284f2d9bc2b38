import type {NicConfig} from '@hyper2kvm/plugin-api'

import {naturalCompare} from './natural-order.js'

/** One interface a guest file configures: what it binds to (name and/or MAC) and how it gets its address. */
export type NicBinding = NicConfig
/** The network configuration tools whose files fixer:network reads and rewrites. */
export type NicTool = NicConfig['tool']

/** A rename the guest applies by MAC (70-persistent-net.rules, a .link file, netplan set-name): the name survives only while the MAC does. */
export interface MacPin {
  mac: string
  name: string
}

/**
 * How the guest will name its NICs on KVM. `predictable`: systemd/udev slot naming; the virtio-net-pci NIC on
 * the q35 machine's PCIe root port N gets `enp<N>s0` (NIC i in the guest's order is on root port i+1).
 * `kernel`: net.ifnames=0 or a udev without predictable names; NIC i is `eth<i>`.
 */
export type NamingScheme = 'predictable' | 'kernel'

/** What every network transform rewrites by: old interface name → new one, and MAC → the name its NIC gets. */
export interface NicPlan {
  /** The guest's configured NICs (their old name, or MAC when they have none), in the order of the slots they get. */
  order: readonly string[]
  /** Each NIC in `order` → the name it gets on KVM (its slot's name; kept for a name pinned by a kept MAC). */
  targets: ReadonlyMap<string, string>
  renames: ReadonlyMap<string, string>
  macNames: ReadonlyMap<string, string>
  /** The MACs stay the same on KVM (keep_macs): MAC bindings and pins are left as they are. */
  keepMacs: boolean
}

const PHYSICAL = /^(?:eth\d{1,3}|en(?:o|s|p\d{1,3}s)\d{1,4}(?:f\d{1,2})?(?:n?p\d{1,2})?(?:d\d{1,2})?|enx[0-9a-f]{12}|em\d{1,3}|p\d{1,3}p\d{1,3})$/
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/

/** A name a physical NIC has (eth0, ens192, enp11s0, eno1, em1, p2p1, enx...): virtual ones (lo, br0, bond0, ens192.100) are not. */
export function isPhysicalNicName(name: string): boolean {
  return PHYSICAL.test(name)
}

/** A MAC address in the canonical lower-case colon form, or undefined when `text` is not one. */
export function normalizeMac(text: string): string | undefined {
  const mac = text.trim().replace(/^["']|["']$/g, '').replaceAll('-', ':').toLowerCase()
  return MAC.test(mac) ? mac : undefined
}

/** The name NIC `index` (0-based, in the guest's order) gets on the target machine. */
export function targetNicName(index: number, scheme: NamingScheme): string {
  return scheme === 'kernel' ? `eth${index}` : `enp${index + 1}s0`
}

/**
 * Number the guest's NICs and decide each one's name on KVM. A NIC is a physical name or a MAC a config binds
 * (a binding or pin naming both joins them). Named NICs come first in natural name order (the
 * VMware PCI slot order: ens160, ens192, ens224 …, eth0, eth1 …), which is the order the OVF lists them and the
 * order the libvirt domain puts them on root ports; NICs known only by MAC follow in MAC order. When the source
 * lists its NICs' MACs (`sourceMacs`, in the order the domain places them), a NIC whose MAC the guest knows takes
 * that NIC's slot and the others fill the free slots in the order above. With keepMacs a name pinned by MAC
 * survives (the pin still matches) and is left alone.
 */
export function planNics(bindings: readonly NicBinding[], pins: readonly MacPin[], options: {scheme: NamingScheme; keepMacs: boolean; sourceMacs?: readonly (string | undefined)[]}): NicPlan {
  const nameOfMac = new Map<string, string>()
  for (const {mac, name} of [...pins, ...bindings]) {
    if (mac && name && isPhysicalNicName(name) && !nameOfMac.has(mac)) nameOfMac.set(mac, name)
  }
  // Only configured NICs are numbered: a rename rule for a MAC no config uses is often a leftover (old udev
  // wrote one per MAC it ever saw), and counting it would shift every NIC after it.
  const names = new Set<string>()
  const macOnly = new Set<string>()
  for (const {mac, name} of bindings) {
    const known = name && isPhysicalNicName(name) ? name : mac ? nameOfMac.get(mac) : undefined
    if (known) names.add(known)
    else if (mac) macOnly.add(mac)
  }
  const guessed = [...[...names].sort(naturalCompare), ...[...macOnly].sort()]
  const slots = slotsOf(guessed, new Map([...[...nameOfMac].filter(([, name]) => names.has(name)).map(([mac, name]) => [name, mac] as const).reverse(), ...[...macOnly].map((mac) => [mac, mac] as const)]), options.sourceMacs ?? [])
  const order = [...guessed].sort((a, b) => slots.get(a)! - slots.get(b)!)
  const target = new Map(order.map((nic) => [nic, targetNicName(slots.get(nic)!, options.scheme)]))
  const pinned = new Set(options.keepMacs ? pins.map((p) => p.name) : [])
  const renames = new Map<string, string>()
  for (const name of names) {
    const to = pinned.has(name) ? name : target.get(name)!
    if (to !== name) renames.set(name, to)
  }
  const macNames = new Map<string, string>()
  for (const [mac, name] of nameOfMac) if (names.has(name)) macNames.set(mac, renames.get(name) ?? name)
  for (const mac of macOnly) macNames.set(mac, target.get(mac)!)
  const targets = new Map(order.map((nic) => [nic, renames.get(nic) ?? (names.has(nic) ? nic : target.get(nic)!)]))
  return {keepMacs: options.keepMacs, macNames, order, renames, targets}
}

/** Each NIC's slot (0-based): the source NIC's with its MAC, else the first free one in `guessed` order. */
function slotsOf(guessed: readonly string[], macOf: ReadonlyMap<string, string>, sourceMacs: readonly (string | undefined)[]): Map<string, number> {
  const slots = new Map<string, number>()
  const taken = new Set<number>()
  for (const nic of guessed) {
    const mac = macOf.get(nic)
    const at = mac === undefined ? -1 : sourceMacs.findIndex((source) => source !== undefined && normalizeMac(source) === mac)
    if (at >= 0 && !taken.has(at)) {
      slots.set(nic, at)
      taken.add(at)
    }
  }
  let next = 0
  for (const nic of guessed) {
    if (slots.has(nic)) continue
    while (taken.has(next)) next++
    slots.set(nic, next)
    taken.add(next)
  }
  return slots
}

const NAME_CHAR = '[A-Za-z0-9_-]'

/**
 * `text` with every whole interface name the plan renames replaced; a VLAN (`ens192.100`) or alias (`ens192:1`)
 * follows its NIC. Names are physical names only (letters and digits), so they need no regex escaping.
 */
export function renameInterfaces(text: string, plan: NicPlan): string {
  if (plan.renames.size === 0) return text
  const pattern = new RegExp(`(?<!${NAME_CHAR})(${[...plan.renames.keys()].join('|')})(?!${NAME_CHAR})`, 'g')
  return text.replace(pattern, (name) => plan.renames.get(name) ?? name)
}

/** The name the NIC with this MAC gets on KVM (undefined: a MAC the plan does not know). */
export function nameForMac(mac: string, plan: NicPlan): string | undefined {
  const normal = normalizeMac(mac)
  return normal === undefined ? undefined : plan.macNames.get(normal)
}

/** "ens192 → enp1s0" for each renamed name that occurs in `text`, for an edit's reason. */
export function renamesIn(text: string, plan: NicPlan): string {
  const found = new Set<string>()
  if (plan.renames.size > 0) {
    const pattern = new RegExp(`(?<!${NAME_CHAR})(${[...plan.renames.keys()].join('|')})(?!${NAME_CHAR})`, 'g')
    for (const match of text.matchAll(pattern)) found.add(match[1]!)
  }
  return [...found].map((name) => `${name} → ${plan.renames.get(name)}`).join(', ')
}
