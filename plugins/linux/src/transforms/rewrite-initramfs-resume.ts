import {type DeviceResolver, isUnstableDevice, stableSpec, whyUnstable} from './device-resolver.js'
import {findShellValue, isShellComment} from './shell-value.js'
import {joinLines, splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

/**
 * Rewrite RESUME= in /etc/initramfs-tools/conf.d/resume (Debian, Ubuntu; also allowed in initramfs.conf). The
 * initramfs waits for that device at every boot before giving up, so a /dev/sda5 that is /dev/vda5 on KVM costs a
 * long pause ("Gave up waiting for suspend/resume device") and hibernation stops working. RESUME=none, auto and
 * UUID= values are left alone.
 */
export function rewriteInitramfsResume(text: string, resolve: DeviceResolver): TransformResult {
  const result: TransformResult = {text, edits: [], warnings: []}
  const lines = splitLines(text)
  for (const [index, line] of lines.entries()) {
    if (isShellComment(line.body)) continue
    const found = findShellValue(line.body, 'RESUME')
    if (!found || !isUnstableDevice(found.value, 'stabilize-all')) continue
    const ids = resolve(found.value)
    const stable = ids && stableSpec(ids, 'cmdline')
    if (!stable) {
      result.warnings.push(`initramfs resume line ${index + 1}: no UUID, PARTUUID or usable LABEL known for ${found.value}; left as is.`)
      continue
    }
    const after = line.body.slice(0, found.start) + stable + line.body.slice(found.end)
    const reason = `${whyUnstable(found.value)}; ${stable} finds the swap device on any controller.`
    result.edits.push({line: index + 1, before: line.body, after, reason})
    line.body = after
  }
  if (result.edits.length > 0) result.text = joinLines(lines)
  return result
}
