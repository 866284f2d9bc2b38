import type {DeviceResolver} from './device-resolver.js'
import {rewriteCmdlineArgs} from './rewrite-kernel-cmdline.js'
import {findShellValue, isShellComment} from './shell-value.js'
import {joinLines, splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

export interface DefaultGrubResult extends TransformResult {
  /** grub.cfg was generated from the old settings: run grub-mkconfig (then check it with findUnstableRoots). */
  needsRegeneration: boolean
}

const CMDLINE_VARS = ['GRUB_CMDLINE_LINUX', 'GRUB_CMDLINE_LINUX_DEFAULT']

/** The value a sourced file leaves in NAME: the last assignment wins, as in the shell. */
function lastValue(bodies: readonly string[], name: string): string | undefined {
  let value: string | undefined
  for (const body of bodies) {
    if (!isShellComment(body)) value = findShellValue(body, name)?.value ?? value
  }
  return value
}

/**
 * Rewrite /etc/default/grub (or a /etc/default/grub.d/*.cfg fragment, which grub-mkconfig sources after it and which
 * can set the same variables) so that the next grub-mkconfig, run on KVM, still finds the root file system:
 *
 * - root=, resume= ... inside GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT (double-quoted, single-quoted or
 *   bare) become UUID=...; `$GRUB_CMDLINE_LINUX`-style references are left alone.
 * - GRUB_DISABLE_LINUX_UUID=true is commented out (the line is kept behind a `#`). With it, 10_linux writes
 *   root=${GRUB_DEVICE}, the name the running system gives the root disk: /dev/sda1 in the appliance or on VMware,
 *   a disk that does not exist on virtio. Unset and `false` mean the same to every 10_linux we know (they test
 *   for "xtrue"), so commenting out is the smaller change, keeps the user's original visible and is undone by
 *   deleting one `#`. It is left alone when GRUB_DISABLE_LINUX_PARTUUID=false is set: grub then writes
 *   root=PARTUUID=..., which is just as stable, and that was the user's choice. GRUB_DISABLE_LINUX_PARTUUID is
 *   never changed: with UUIDs enabled it does not matter.
 */
export function rewriteDefaultGrub(text: string, resolve: DeviceResolver): DefaultGrubResult {
  const result: DefaultGrubResult = {text, edits: [], warnings: [], needsRegeneration: false}
  const lines = splitLines(text)
  const bodies = lines.map((line) => line.body)
  const uuidDisabled = lastValue(bodies, 'GRUB_DISABLE_LINUX_UUID') === 'true'
  const partuuidEnabled = lastValue(bodies, 'GRUB_DISABLE_LINUX_PARTUUID') === 'false'
  for (const [index, line] of lines.entries()) {
    if (isShellComment(line.body)) continue
    const number = index + 1
    if (uuidDisabled && !partuuidEnabled && findShellValue(line.body, 'GRUB_DISABLE_LINUX_UUID')?.value === 'true') {
      const after = `#${line.body}`
      const reason =
        'with GRUB_DISABLE_LINUX_UUID=true grub-mkconfig writes root=/dev/sdX (the name at generation time); unset, it writes root=UUID=...'
      result.edits.push({line: number, before: line.body, after, reason})
      line.body = after
      continue
    }
    for (const name of CMDLINE_VARS) {
      const found = findShellValue(line.body, name)
      if (!found) {
        if (new RegExp(`^\\s*(?:export\\s+)?${name}=["']`).test(line.body)) {
          result.warnings.push(`/etc/default/grub line ${number}: ${name} continues on the next line; not inspected.`)
        }
        continue
      }
      const rewrite = rewriteCmdlineArgs(found.value, resolve)
      for (const warning of rewrite.warnings) result.warnings.push(`/etc/default/grub line ${number}: ${warning}`)
      const reason = rewrite.edits[0]?.reason
      if (reason === undefined) continue
      const after = line.body.slice(0, found.start) + rewrite.text + line.body.slice(found.end)
      result.edits.push({line: number, before: line.body, after, reason: `${name}: ${reason}`})
      line.body = after
    }
  }
  if (result.edits.length > 0) {
    result.text = joinLines(lines)
    result.needsRegeneration = true
  }
  return result
}
