import {iniLines} from './ini-sections.js'
import {LineRewriter, commentedOut} from './line-rewriter.js'
import {type NicBinding, type NicPlan, isPhysicalNicName, nameForMac, normalizeMac, renameInterfaces, renamesIn} from './nic-plan.js'
import {splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

const ETHERNET = new Set(['ethernet', '802-3-ethernet'])

/** The NIC a NetworkManager keyfile (.nmconnection) binds: [connection] interface-name=, [ethernet] mac-address=, [ipv4] method=. */
export function nmKeyfileBindings(text: string, file: string): NicBinding[] {
  let type: string | undefined
  let name: string | undefined
  let mac: string | undefined
  let method: string | undefined
  for (const {key, section, value} of iniLines(splitLines(text))) {
    if (section === 'connection' && key === 'type') type = value
    if (section === 'connection' && key === 'interface-name' && value !== undefined && isPhysicalNicName(value)) name = value
    if (ETHERNET.has(section) && key === 'mac-address') mac = normalizeMac(value ?? '')
    if (section === 'ipv4' && key === 'method') method = value
  }
  if (!ETHERNET.has(type ?? '') || (name === undefined && mac === undefined)) return []
  const mode = method === 'manual' ? 'static' : method === 'auto' ? 'dhcp' : 'unknown'
  return [{file, mode, tool: 'networkmanager', ...(name ? {name} : {}), ...(mac ? {mac} : {})}]
}

/**
 * A NetworkManager keyfile: interface-name= follows a renamed NIC; mac-address= in [ethernet] (unless the MACs
 * are kept) would bind the profile to no device on KVM, so it is commented out, and where it was the only
 * binding the profile gets interface-name=<the name that NIC gets> so a multi-NIC guest's profiles stay apart.
 */
export function rewriteNmKeyfile(text: string, plan: NicPlan): TransformResult {
  const lines = iniLines(splitLines(text))
  const hasName = lines.some((l) => l.section === 'connection' && l.key === 'interface-name')
  const macLine = lines.find((l) => ETHERNET.has(l.section) && l.key === 'mac-address')
  const dropMac = macLine !== undefined && !plan.keepMacs
  const added = dropMac && !hasName ? nameForMac(macLine.value ?? '', plan) : undefined
  const out = new LineRewriter(text)
  let connection = false
  for (const {key, line, section} of lines) {
    if (section === 'connection' && key === 'interface-name') out.replace(line, renameInterfaces(line.body, plan), `${renamesIn(line.body, plan)}: the profile's interface on KVM`)
    else if (dropMac && line === macLine.line) out.replace(line, commentedOut(line.body), 'the NIC gets a new MAC on KVM (MACs not kept): the profile would bind to no device')
    else out.keep(line)
    if (section === 'connection' && !connection && added !== undefined) {
      connection = true
      out.add(`interface-name=${added}`, `bound by the name its NIC gets on KVM instead of its old MAC ${normalizeMac(macLine?.value ?? '')}`)
    }
  }
  return out.result()
}
