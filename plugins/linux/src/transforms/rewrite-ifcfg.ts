import {LineRewriter, commentedOut} from './line-rewriter.js'
import {type NicBinding, type NicPlan, isPhysicalNicName, nameForMac, normalizeMac, renameInterfaces, renamesIn} from './nic-plan.js'
import {findShellValue, isShellComment} from './shell-value.js'
import {splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

function values(text: string): Map<string, string> {
  const found = new Map<string, string>()
  for (const {body} of splitLines(text)) {
    if (isShellComment(body)) continue
    const key = /^\s*(?:export\s+)?([A-Z][A-Z0-9_]{0,40})=/.exec(body)?.[1]
    const value = key === undefined ? undefined : findShellValue(body, key)
    if (key !== undefined && value !== undefined) found.set(key, value.value)
  }
  return found
}

/** The interface an ifcfg file names by its own name (`ifcfg-ens192`), as SUSE's wicked does and RHEL's ifup does without DEVICE=. */
export function ifcfgFileNic(file: string): string | undefined {
  const name = /(?:^|\/)ifcfg-([^/]+)$/.exec(file)?.[1]
  return name !== undefined && isPhysicalNicName(name) ? name : undefined
}

/** Whether an ifcfg file says DEVICE= (else its file name names the interface). */
export function ifcfgHasDevice(text: string): boolean {
  return values(text).has('DEVICE')
}

/** The NIC an ifcfg-* file (RHEL, SUSE) configures: DEVICE= (else the file's name), HWADDR=, and BOOTPROTO=/IPADDR= for how it gets its address. */
export function ifcfgBindings(text: string, file: string): NicBinding[] {
  const vars = values(text)
  const type = vars.get('TYPE')
  if (type !== undefined && type.toLowerCase() !== 'ethernet') return []
  const device = vars.get('DEVICE')
  const name = device === undefined ? ifcfgFileNic(file) : isPhysicalNicName(device) ? device : undefined
  const mac = normalizeMac(vars.get('HWADDR') ?? '')
  if (name === undefined && mac === undefined) return []
  const proto = (vars.get('BOOTPROTO') ?? '').toLowerCase()
  const mode = proto === 'dhcp' || proto === 'bootp' ? 'dhcp' : vars.has('IPADDR') || vars.has('IPADDR0') ? 'static' : 'unknown'
  return [{file, mode, tool: 'ifcfg', ...(name ? {name} : {}), ...(mac ? {mac} : {})}]
}

/**
 * An ifcfg-* file: DEVICE= (and any other whole-word use of a renamed NIC: PHYSDEV=, a VLAN's DEVICE=ens192.100)
 * follows the NIC's new name; HWADDR= (unless the MACs are kept) makes ifup and NetworkManager refuse the NIC
 * with its new MAC, so it is commented out, and a file that bound by HWADDR= alone gets DEVICE=<the name that
 * NIC gets>. The file keeps its name, so route-/rule- files found by it keep working.
 */
export function rewriteIfcfg(text: string, plan: NicPlan): TransformResult {
  const vars = values(text)
  const hwaddr = vars.get('HWADDR')
  const dropMac = hwaddr !== undefined && !plan.keepMacs
  const added = dropMac && !vars.has('DEVICE') ? nameForMac(hwaddr, plan) : undefined
  const out = new LineRewriter(text)
  for (const line of splitLines(text)) {
    if (isShellComment(line.body)) out.keep(line)
    else if (dropMac && findShellValue(line.body, 'HWADDR') !== undefined) out.replace(line, commentedOut(line.body), 'the NIC gets a new MAC on KVM (MACs not kept): ifup would refuse it')
    else out.replace(line, renameInterfaces(line.body, plan), `${renamesIn(line.body, plan)}: the NIC's name on KVM`)
  }
  if (added !== undefined) out.add(`DEVICE=${added}`, `bound by the name its NIC gets on KVM instead of its old MAC ${normalizeMac(hwaddr ?? '')}`)
  return out.result()
}
