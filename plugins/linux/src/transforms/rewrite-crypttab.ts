import {type DeviceResolver, type FstabMode, isUnstableDevice, stableSpec, whyUnstable} from './device-resolver.js'
import {fieldSpans, replaceSpan} from './field-spans.js'
import {joinLines, splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

// Plain dm-crypt with a throw-away key (swap and /tmp re-encrypted at every boot) leaves no header on the disk:
// whatever UUID blkid reports is noise, or worse, the stale file system the partition held before. Only the
// partition table knows such a partition, so it is named by PARTUUID or not at all.
const RANDOM_KEYS = new Set(['/dev/urandom', '/dev/random', '/dev/hw_random'])
const HEADERLESS_OPTIONS = new Set(['plain', 'swap', 'tmp'])

/**
 * Rewrite the source device (second field) of /etc/crypttab to UUID= (the LUKS header's UUID) or PARTUUID=.
 * systemd-cryptsetup-generator and Debian's cryptdisks both accept UUID=, PARTUUID= and LABEL= there. The name,
 * key file and options fields are never touched, even when the key file names a device.
 */
export function rewriteCrypttab(text: string, mode: FstabMode, resolve: DeviceResolver): TransformResult {
  const result: TransformResult = {text, edits: [], warnings: []}
  if (mode === 'noop') return result
  const lines = splitLines(text)
  for (const [index, line] of lines.entries()) {
    const fields = fieldSpans(line.body)
    const [name, source, keyFile, options] = fields
    if (!name || name.value.startsWith('#') || !source || !isUnstableDevice(source.value, mode)) continue
    const headerless =
      RANDOM_KEYS.has(keyFile?.value ?? '') || (options?.value ?? '').split(',').some((option) => HEADERLESS_OPTIONS.has(option))
    const ids = resolve(source.value)
    const stable = ids && stableSpec(headerless ? {partuuid: ids.partuuid} : ids, 'crypttab')
    if (!stable) {
      const wanted = headerless ? 'PARTUUID (plain dm-crypt has no header UUID)' : 'UUID, PARTUUID or usable LABEL'
      result.warnings.push(`crypttab line ${index + 1}: no ${wanted} known for ${source.value}; left as is (it may not be found on KVM).`)
      continue
    }
    const after = replaceSpan(line.body, source, stable)
    const reason = `${whyUnstable(source.value)}; ${stable} finds the same encrypted device on any controller.`
    result.edits.push({line: index + 1, before: line.body, after, reason})
    line.body = after
  }
  if (result.edits.length > 0) result.text = joinLines(lines)
  return result
}
