import {ADDED_BY, DEFAULT_INITRAMFS_DRIVERS, moduleKey, validModules} from './initramfs-drivers.js'
import {appendLines, dominantEol, joinLines, splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

/**
 * Make /etc/initramfs-tools/modules (Debian, Ubuntu) list the given drivers: update-initramfs copies every module
 * named there and loads it early. Missing ones are appended one per line under a marker comment; existing lines,
 * including module parameters, are kept. A module that is only mentioned in a comment (`#virtio_blk`) is not
 * loaded, so it counts as missing.
 */
export function ensureInitramfsToolsModules(text: string, drivers: readonly string[] = DEFAULT_INITRAMFS_DRIVERS): TransformResult {
  const {modules, warnings} = validModules(drivers)
  const lines = splitLines(text)
  const present = new Set<string>()
  for (const line of lines) {
    const name = line.body.trim().split(/\s+/)[0] ?? ''
    if (name !== '' && !name.startsWith('#')) present.add(moduleKey(name))
  }
  const missing = modules.filter((module) => !present.has(moduleKey(module)))
  if (missing.length === 0) return {text, edits: [], warnings}
  const first = lines.length + 1
  const added = [ADDED_BY, ...missing]
  appendLines(lines, added, dominantEol(text))
  const reasonFor = (offset: number): string =>
    offset === 0 ? 'marks the lines hyper2kvm added' : 'the initramfs must load this driver to find the root disk on KVM'
  const edits = added.map((after, offset) => ({line: first + offset, before: '', after, reason: reasonFor(offset)}))
  return {text: joinLines(lines), edits, warnings}
}
