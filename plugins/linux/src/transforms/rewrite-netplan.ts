import {LineRewriter, commentedOut} from './line-rewriter.js'
import {type MacPin, type NicBinding, type NicPlan, isPhysicalNicName, nameForMac, normalizeMac, renameInterfaces, renamesIn} from './nic-plan.js'
import {type SourceLine, splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

/** A line of a netplan YAML file as this line-based reader sees it: block mappings by indentation, flow maps on one line. */
interface YamlLine {
  line: SourceLine
  /** Keys from the document root to this line's key (`network`, `ethernets`, `<id>`, `match`, `macaddress`). */
  path: string[]
  value?: string
}

const KEY = /^(\s*)(["']?)([A-Za-z0-9_.:-]{1,64})\2\s*:(?:\s+(.*))?$/

/** `value` up to a YAML comment (a `#` after a blank), found in one pass: a regex with `\s+#` is quadratic on long runs of blanks. */
function withoutComment(value: string): string {
  for (let at = value.indexOf('#'); at > 0; at = value.indexOf('#', at + 1)) {
    if (/\s/.test(value[at - 1]!)) return value.slice(0, at)
  }
  return value
}

function unquote(value: string): string {
  return withoutComment(value).trim().replace(/^(["'])(.*)\1$/, '$2')
}

/** Deeper than this, a mapping is nothing netplan's `network.ethernets.<id>.match.<key>` needs: not tracked (hostile nesting stays cheap). */
const MAX_DEPTH = 16

function yamlLines(text: string): YamlLine[] {
  const stack: Array<{indent: number; key: string}> = []
  return splitLines(text).map((line) => {
    const trimmed = line.body.trim()
    const key = KEY.exec(line.body)
    if (trimmed === '' || trimmed.startsWith('#') || !key) return {line, path: stack.map((s) => s.key)}
    const indent = key[1]!.length
    while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop()
    if (stack.length >= MAX_DEPTH) return {line, path: stack.map((s) => s.key)}
    stack.push({indent, key: key[3]!})
    return {line, path: stack.map((s) => s.key), ...(key[4] !== undefined ? {value: key[4]} : {})}
  })
}

/** A flow map on one line (`{macaddress: "…", name: ens192}`) as entries, or undefined when it is anything else. */
function flowMap(value: string): Array<[string, string]> | undefined {
  const body = /^\{([^{}[\]]*)\}\s*(?:#.*)?$/.exec(value.trim())?.[1]
  if (body === undefined) return undefined
  const entries: Array<[string, string]> = []
  for (const part of body.split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf(':')
    if (at <= 0) return undefined
    entries.push([part.slice(0, at).trim(), unquote(part.slice(at + 1))])
  }
  return entries
}

interface NetplanNic {
  id: string
  matchName?: string
  mac?: string
  setName?: string
  dhcp: boolean
  static: boolean
}

/** Each `network.ethernets.<id>` of a netplan file with its match, set-name and addressing. */
function netplanNics(lines: readonly YamlLine[]): Map<string, NetplanNic> {
  const nics = new Map<string, NetplanNic>()
  for (const {path, value} of lines) {
    if (path.length < 3 || path[1] !== 'ethernets') continue
    const id = path[2]!
    const nic = nics.get(id) ?? {dhcp: false, id, static: false}
    nics.set(id, nic)
    const [key, sub] = [path[3], path[4]]
    if (key === 'match' && sub === undefined && value !== undefined) {
      const entries = new Map(flowMap(value) ?? [])
      if (entries.has('name')) nic.matchName = entries.get('name')
      if (entries.has('macaddress')) nic.mac = normalizeMac(entries.get('macaddress')!)
    }
    if (key === 'match' && sub === 'name' && value !== undefined) nic.matchName = unquote(value)
    if (key === 'match' && sub === 'macaddress' && value !== undefined) nic.mac = normalizeMac(unquote(value))
    if (key === 'set-name' && value !== undefined) nic.setName = unquote(value)
    if (key === 'dhcp4' && value !== undefined) nic.dhcp ||= /^(true|yes|on)$/i.test(unquote(value))
    if (key === 'addresses') nic.static = true
  }
  return nics
}

const physical = (name: string | undefined) => (name !== undefined && isPhysicalNicName(name) ? name : undefined)

/** The NICs a netplan file configures under `ethernets`: by set-name, match name or id, and match macaddress. */
export function netplanBindings(text: string, file: string): NicBinding[] {
  return [...netplanNics(yamlLines(text)).values()].flatMap((nic) => {
    const name = physical(nic.setName) ?? physical(nic.matchName) ?? (nic.matchName === undefined && nic.mac === undefined ? physical(nic.id) : undefined)
    if (name === undefined && nic.mac === undefined) return []
    return [{file, mode: nic.static ? 'static' : nic.dhcp ? 'dhcp' : 'unknown', tool: 'netplan', ...(name ? {name} : {}), ...(nic.mac ? {mac: nic.mac} : {})} satisfies NicBinding]
  })
}

/** `set-name` under a `match: {macaddress}`: netplan renames that MAC's NIC. */
export function netplanPins(text: string): MacPin[] {
  return [...netplanNics(yamlLines(text)).values()].flatMap((nic) => (nic.mac && physical(nic.setName) ? [{mac: nic.mac, name: nic.setName!}] : []))
}

/** An ethernets id for a warning: ids are guest text, so anything but a plain name is not repeated. */
function safeId(id: string): string {
  return /^[A-Za-z0-9_.-]{1,32}$/.test(id) ? id : '(unnamed)'
}

const MAC_REASON = 'the NIC gets a new MAC on KVM (MACs not kept): a macaddress match would match nothing'

/**
 * A netplan file: interface ids, `match: name`, `set-name` and references (bridges' `interfaces`, vlans' `link`)
 * follow renamed NICs. Unless the MACs are kept, `match: macaddress` becomes `name: <the name that NIC gets>`
 * (or is commented out beside an existing `name:`) and its `set-name` is commented out: it renamed by a MAC
 * that is gone. A `macaddress:` that sets the NIC's MAC (not under match) is a setting and stays.
 */
export function rewriteNetplan(text: string, plan: NicPlan): TransformResult {
  const lines = yamlLines(text)
  const nics = netplanNics(lines)
  const out = new LineRewriter(text)
  for (const {line, path, value} of lines) {
    const nic = path[1] === 'ethernets' && path[2] !== undefined ? nics.get(path[2]) : undefined
    const byMac = nic?.mac !== undefined && !plan.keepMacs
    const target = byMac ? nameForMac(nic.mac!, plan) : undefined
    const body = line.body
    if (body.trimStart().startsWith('#') || value === undefined || !nic || path.length < 4) {
      out.replace(line, body.trimStart().startsWith('#') ? body : renameInterfaces(body, plan), `${renamesIn(body, plan)}: the NIC's name on KVM`)
    } else if (byMac && path[3] === 'match' && path[4] === 'macaddress') {
      if (nic.matchName !== undefined || target === undefined) out.replace(line, commentedOut(body), MAC_REASON)
      else out.replace(line, body.replace(/macaddress\s*:.*$/, `name: ${target}`), `${MAC_REASON}; matched by the name it gets instead`)
    } else if (path[3] === 'match' && path.length === 4 && !plan.keepMacs && flowMap(value) === undefined && /macaddress/.test(value)) {
      out.keep(line)
      out.warnings.push(`ethernets entry ${JSON.stringify(safeId(path[2]!))} matches in a form this fixer does not edit (not a one-line flow map of plain values); its MAC match is left as is`)
    } else if (byMac && path[3] === 'match' && path.length === 4) {
      const entries = flowMap(value)?.filter(([k]) => k !== 'macaddress')
      if (entries === undefined) {
        out.keep(line)
      } else {
        if (!entries.some(([k]) => k === 'name') && target !== undefined) entries.push(['name', target])
        const flow = entries.length === 0 ? '{}' : `{${entries.map(([k, v]) => `${k}: ${renameInterfaces(v, plan)}`).join(', ')}}`
        out.replace(line, body.slice(0, body.indexOf(':') + 1) + ` ${flow}`, `${MAC_REASON}; matched by the name it gets instead`)
      }
    } else if (byMac && path[3] === 'set-name' && path.length === 4) {
      out.replace(line, commentedOut(body), 'renamed the NIC by its old MAC, which it no longer has on KVM (MACs not kept)')
    } else {
      out.replace(line, renameInterfaces(body, plan), `${renamesIn(body, plan)}: the NIC's name on KVM`)
    }
  }
  return out.result()
}
