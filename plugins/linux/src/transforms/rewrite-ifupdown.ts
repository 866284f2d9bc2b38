import {LineRewriter} from './line-rewriter.js'
import {type NicBinding, type NicPlan, isPhysicalNicName, renameInterfaces, renamesIn} from './nic-plan.js'
import {splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

const STANZA = /^\s*iface\s+(\S+)\s+(inet6?|ipx|can)\s+(\S+)/
/** Options that name the NICs a bridge, bond or VLAN stanza is built on: those NICs are configured too. */
const MEMBER_OPTION = /^\s*(?:bridge[_-]ports|bond[_-]slaves|slaves|vlan[_-]raw[_-]device)(?=[ \t])/
/** Names looked at per option line (a hostile line stays cheap). */
const MAX_MEMBERS = 32

/** The physical NICs a line names as members (bridge_ports, bond-slaves, vlan-raw-device) or as a VLAN's base (`iface ens192.100`). */
function memberNames(body: string): string[] {
  const option = MEMBER_OPTION.exec(body)
  const names = option ? body.slice(option[0].length).split(/[ \t]+/, MAX_MEMBERS + 1).slice(0, MAX_MEMBERS) : []
  const vlan = STANZA.exec(body)?.[1]?.split('.')
  if (vlan?.length === 2 && /^\d{1,4}$/.test(vlan[1]!)) names.push(vlan[0]!)
  return names.filter((name) => isPhysicalNicName(name))
}

/**
 * The physical interfaces an ifupdown file configures (`iface <name> inet static|dhcp …`, and NICs named only as
 * bridge ports, bond slaves or a VLAN's raw device); the loopback and virtual ones are not NICs.
 */
export function ifupdownBindings(text: string, file: string): NicBinding[] {
  const found = new Map<string, NicBinding>()
  for (const {body} of splitLines(text)) {
    if (body.trimStart().startsWith('#')) continue
    // A NIC that only a bridge, bond or VLAN names has no stanza of its own: it is bound all the same.
    for (const member of memberNames(body)) if (!found.has(member)) found.set(member, {file, mode: 'unknown', name: member, tool: 'ifupdown'})
    const stanza = STANZA.exec(body)
    if (!stanza || !isPhysicalNicName(stanza[1]!)) continue
    const name = stanza[1]!
    const method = stanza[3]!
    const mode = method === 'static' ? 'static' : method === 'dhcp' || method === 'auto' ? 'dhcp' : 'unknown'
    const known = found.get(name)
    // inet and inet6 stanzas of one NIC are one binding; a static address in either makes it static.
    if (!known || known.mode === 'unknown' || mode === 'static') found.set(name, {file, mode, name, tool: 'ifupdown'})
  }
  return [...found.values()]
}

/**
 * /etc/network/interfaces and interfaces.d/*: ifupdown binds by name only, so every whole-word use of a renamed
 * NIC on a non-comment line follows it — `auto`, `allow-hotplug`, `iface`, and the options naming it
 * (bridge_ports, bond-slaves, vlan-raw-device, `dev ens192` in up/down commands, ens192.100, ens192:1).
 * Addresses and methods are untouched: a static NIC stays static.
 */
export function rewriteIfupdown(text: string, plan: NicPlan): TransformResult {
  const out = new LineRewriter(text)
  for (const line of splitLines(text)) {
    if (line.body.trimStart().startsWith('#')) {
      out.keep(line)
      continue
    }
    const renamed = renameInterfaces(line.body, plan)
    out.replace(line, renamed, `${renamesIn(line.body, plan)}: ifupdown binds by name and the virtio NIC has that name on KVM`)
  }
  return out.result()
}
