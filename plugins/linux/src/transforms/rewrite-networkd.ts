import {iniLines} from './ini-sections.js'
import {LineRewriter, commentedOut} from './line-rewriter.js'
import {type MacPin, type NicBinding, type NicPlan, isPhysicalNicName, nameForMac, normalizeMac, renameInterfaces, renamesIn} from './nic-plan.js'
import {splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

/** What a kernel accepts as an interface name (at most 15 characters, no slash or blank). */
export const IFNAME = /^[A-Za-z0-9_.:-]{1,15}$/
const MAC_KEYS = new Set(['MACAddress', 'PermanentMACAddress'])
const words = (value: string | undefined) => (value ?? '').split(/\s+/).filter(Boolean)

/** The NIC a systemd-networkd .network file configures: its [Match] Name=/MACAddress= and whether it has DHCP= or an Address=. */
export function networkdBindings(text: string, file: string): NicBinding[] {
  let name: string | undefined
  let mac: string | undefined
  let dhcp = false
  let address = false
  for (const {key, section, value} of iniLines(splitLines(text))) {
    if (section === 'Match' && key === 'Name') name ??= words(value).find(isPhysicalNicName)
    if (section === 'Match' && key !== undefined && MAC_KEYS.has(key)) mac ??= words(value).map(normalizeMac).find(Boolean)
    if (section === 'Network' && key === 'DHCP') dhcp ||= /^(yes|true|ipv4|ipv6|on|1)$/i.test(value ?? '')
    if ((section === 'Network' || section === 'Address') && key === 'Address') address = true
  }
  if (name === undefined && mac === undefined) return []
  return [{file, mode: address ? 'static' : dhcp ? 'dhcp' : 'unknown', tool: 'networkd', ...(name ? {name} : {}), ...(mac ? {mac} : {})}]
}

/**
 * A .network file's [Match]: Name= follows renamed NICs; MACAddress=/PermanentMACAddress= (unless the MACs are
 * kept) would match no NIC on KVM, so it is commented out where a Name= still selects the NIC, or becomes the
 * Name= its NIC gets where it was the only match. Everything else (addresses, DHCP, routes) is untouched.
 */
export function rewriteNetworkdNetwork(text: string, plan: NicPlan): TransformResult {
  const lines = iniLines(splitLines(text))
  const hasName = lines.some((l) => l.section === 'Match' && l.key === 'Name')
  const out = new LineRewriter(text)
  for (const {key, line, section, value} of lines) {
    if (section !== 'Match' || key === undefined) {
      out.keep(line)
    } else if (key === 'Name') {
      out.replace(line, renameInterfaces(line.body, plan), `${renamesIn(line.body, plan)}: the [Match] Name= of the virtio NIC on KVM`)
    } else if (MAC_KEYS.has(key) && !plan.keepMacs) {
      const names = [...new Set(words(value).map((mac) => nameForMac(mac, plan)).filter((n): n is string => n !== undefined))]
      if (hasName || names.length === 0) out.replace(line, commentedOut(line.body), 'the NIC gets a new MAC on KVM (MACs not kept): a MAC match would match nothing')
      else out.replace(line, `Name=${names.join(' ')}`, `the NIC gets a new MAC on KVM (MACs not kept): matched by the name it gets instead`)
    } else {
      out.keep(line)
    }
  }
  return out.result()
}

/** A .link file that renames a NIC by its MAC ([Match] MACAddress= + [Link] Name=): the pin, if it is one. */
export function networkdLinkPin(text: string): MacPin | undefined {
  let mac: string | undefined
  let name: string | undefined
  for (const {key, section, value} of iniLines(splitLines(text))) {
    if (section === 'Match' && key === 'MACAddress') mac = words(value).length === 1 ? normalizeMac(words(value)[0]!) : undefined
    if (section === 'Link' && key === 'Name') name = value !== undefined && IFNAME.test(value) ? value : undefined
  }
  return mac && name ? {mac, name} : undefined
}

export interface LinkDecision {
  action: 'delete' | 'keep'
  reason?: string
}

/** A .link file pinning a name to a MAC is stale when the NIC gets a new MAC: removed, so the virtio NIC keeps its predictable name. */
export function decideNetworkdLink(text: string, plan: NicPlan): LinkDecision {
  const pin = networkdLinkPin(text)
  if (!pin || plan.keepMacs) return {action: 'keep'}
  return {action: 'delete', reason: `renamed the NIC with MAC ${pin.mac} to ${pin.name}; the virtio NIC gets a new MAC on KVM (MACs not kept), so the file is stale and its configuration follows the NIC's new name`}
}

/** Where fixer:network pins the name of a single-NIC guest's virtio NIC (sorts before the distribution's 99-default.link). */
export const VIRTIO_NIC_LINK_PATH = '/etc/systemd/network/10-hyper2kvm-virtio-nic.link'

/**
 * A .link file that gives the virtio NIC the name the rewritten configuration binds, wherever the hypervisor
 * put it (root port, pcie.0 slot, i440fx slot): for a single-NIC guest, matching the driver is unambiguous.
 */
export function virtioNicLinkFor(name: string): string {
  return [
    '# Written by hyper2kvm: the guest\'s network configuration was rebound to this name for KVM;',
    '# this keeps it true whichever PCI slot the virtio NIC sits in. Remove it to get slot-based names back.',
    '[Match]',
    'Driver=virtio_net',
    '',
    '[Link]',
    `Name=${name}`,
    '',
  ].join('\n')
}
