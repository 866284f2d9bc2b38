import {type DeviceResolver, type FstabMode, isUnstableDevice, stableSpec, unescapeFstabField, whyUnstable} from './device-resolver.js'
import {fieldSpans, replaceSpan} from './field-spans.js'
import {joinLines, splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

/**
 * Rewrite /etc/fstab so every file system is found by UUID (or PARTUUID, or LABEL) instead of a name that depends
 * on the disk controller. Only the spec field of a changed line is replaced; comments, blank lines, alignment,
 * CRLF and a missing final newline stay byte for byte. Lines with fewer than 6 fields are fine (fs_freq and
 * fs_passno default to 0); lines with fewer than 3 are broken and left alone with a warning. Bind mounts are left
 * alone whatever their source, and a btrfs disk mounted several times with subvol= gets the same UUID on every
 * line because the resolver answers per device.
 */
export function rewriteFstab(text: string, mode: FstabMode, resolve: DeviceResolver): TransformResult {
  const result: TransformResult = {text, edits: [], warnings: []}
  if (mode === 'noop') return result
  const lines = splitLines(text)
  for (const [index, line] of lines.entries()) {
    const fields = fieldSpans(line.body)
    const spec = fields[0]
    if (!spec || spec.value.startsWith('#')) continue
    const device = unescapeFstabField(spec.value)
    if (!isUnstableDevice(device, mode)) continue
    const number = index + 1
    if (fields.length < 3) {
      result.warnings.push(`fstab line ${number}: "${line.body.trim()}" has fewer than 3 fields; left as is.`)
      continue
    }
    const options = (fields[3]?.value ?? 'defaults').split(',')
    if (options.includes('bind') || options.includes('rbind')) continue
    const ids = resolve(device)
    const stable = ids && stableSpec(ids, 'fstab')
    if (!stable) {
      result.warnings.push(`fstab line ${number}: no UUID, PARTUUID or usable LABEL known for ${device}; left as is (may be missing on KVM).`)
      continue
    }
    const after = replaceSpan(line.body, spec, stable)
    const reason = `${whyUnstable(device)}; ${stable} finds the same file system on any controller.`
    result.edits.push({line: number, before: line.body, after, reason})
    line.body = after
  }
  if (result.edits.length > 0) result.text = joinLines(lines)
  return result
}
