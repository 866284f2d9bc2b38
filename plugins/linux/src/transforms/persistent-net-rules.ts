import {LineRewriter, commentedOut} from './line-rewriter.js'
import type {MacPin, NicPlan} from './nic-plan.js'
import {normalizeMac} from './nic-plan.js'
import {IFNAME} from './rewrite-networkd.js'
import {splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

const ADDRESS = /ATTRS?\{address\}=="([^"]{1,40})"/
const NAME = /\bNAME:?="([^"]{1,40})"/

/** The renames a udev rules file (70-persistent-net.rules) applies by MAC: `ATTR{address}=="…", NAME="…"`. */
export function persistentNetPins(text: string): MacPin[] {
  const pins: MacPin[] = []
  for (const {body} of splitLines(text)) {
    if (body.trimStart().startsWith('#') || !/SUBSYSTEM=="net"/.test(body)) continue
    const mac = normalizeMac(ADDRESS.exec(body)?.[1] ?? '')
    const name = NAME.exec(body)?.[1]
    if (mac && name && IFNAME.test(name)) pins.push({mac, name})
  }
  return pins
}

export interface RulesDecision extends TransformResult {
  /** Nothing but stale renames (and comments) was in the file: remove it. */
  remove: boolean
}

/**
 * 70-persistent-net.rules names NICs by the MACs they had on VMware. On KVM (MACs not kept) every such rule
 * matches nothing — or, on old udev, makes the new NIC eth1 behind a ghost eth0 — so the renames are stale:
 * the file is removed when they are all it holds, else those lines are commented out.
 */
export function rewritePersistentNetRules(text: string, plan: NicPlan): RulesDecision {
  const out = new LineRewriter(text)
  let others = false
  for (const line of splitLines(text)) {
    const pin = persistentNetPins(line.body)[0]
    if (pin && !plan.keepMacs) out.replace(line, commentedOut(line.body), `renamed the NIC with MAC ${pin.mac} to ${pin.name}; the virtio NIC gets a new MAC on KVM (MACs not kept)`)
    else {
      if (!pin && line.body.trim() !== '' && !line.body.trimStart().startsWith('#')) others = true
      out.keep(line)
    }
  }
  const result = out.result()
  return {...result, remove: result.edits.length > 0 && !others}
}
