import {parseParam, tokenizeArgs} from './cmdline-tokens.js'
import {type DeviceResolver, isUnstableDevice, stableSpec, whyUnstable} from './device-resolver.js'
import {joinLines, splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

/**
 * Arguments whose value names a block device. root= and resume= are read by the kernel, initramfs-tools, dracut,
 * mkinitcpio and systemd; real_root=/real_resume= are Gentoo genkernel's; cryptdevice=<device>:<name>[:opts] is
 * Arch's encrypt hook. All of them accept UUID= and PARTUUID=.
 */
const DEVICE_ARGS = new Set(['root', 'resume', 'real_root', 'real_resume'])
const DEVICE_PREFIX_ARGS = new Set(['cryptdevice'])

/** The result of rewriting one argument list: the new text plus one reason per rewritten argument. */
interface ArgsRewrite {
  text: string
  reasons: string[]
  warnings: string[]
}

/**
 * Rewrite the device arguments of a command line, keeping every other character where it was. Values that are
 * variable references ($kernelopts, ${extra}) are not devices and are left for whoever expands them.
 */
function rewriteArgs(args: string, resolve: DeviceResolver): ArgsRewrite {
  const rewrite: ArgsRewrite = {text: args, reasons: [], warnings: []}
  let text = ''
  let copied = 0
  for (const token of tokenizeArgs(args)) {
    const param = parseParam(token.text)
    if (!param || param.value.includes('$')) continue
    const prefix = DEVICE_PREFIX_ARGS.has(param.key)
    if (!prefix && !DEVICE_ARGS.has(param.key)) continue
    const colon = prefix ? param.value.indexOf(':') : -1
    const device = colon === -1 ? param.value : param.value.slice(0, colon)
    if (!isUnstableDevice(device, 'stabilize-all')) continue
    const ids = resolve(device)
    const stable = ids && stableSpec(ids, 'cmdline')
    if (!stable) {
      rewrite.warnings.push(`${param.key}=${device}: no UUID, PARTUUID or usable LABEL known for ${device}; left as is.`)
      continue
    }
    const value = colon === -1 ? stable : stable + param.value.slice(colon)
    text += args.slice(copied, token.start) + param.with(value)
    copied = token.end
    rewrite.reasons.push(`${param.key}=: ${whyUnstable(device)}; ${stable} finds it on any controller`)
  }
  if (rewrite.reasons.length > 0) rewrite.text = text + args.slice(copied)
  return rewrite
}

/**
 * Rewrite root=, resume= (and the other device arguments above) of a kernel command line from controller names to
 * UUID= (else PARTUUID=, LABEL= only when nothing else is known), keeping order, quoting and every other
 * argument. The single edit, if any, is reported as line 1.
 */
export function rewriteCmdlineArgs(args: string, resolve: DeviceResolver): TransformResult {
  const rewrite = rewriteArgs(args, resolve)
  const edits = rewrite.reasons.length > 0 ? [{line: 1, before: args, after: rewrite.text, reason: `${rewrite.reasons.join('; ')}.`}] : []
  return {text: rewrite.text, edits, warnings: rewrite.warnings}
}

/**
 * Rewrite the argument part of selected lines of a file. `argsOf` finds where the arguments start on a line (or
 * returns -1 to skip the line); everything before that offset is kept as is. Shared by every boot file format.
 */
export function rewriteArgLines(text: string, resolve: DeviceResolver, what: string, argsOf: (body: string) => number): TransformResult {
  const result: TransformResult = {text, edits: [], warnings: []}
  const lines = splitLines(text)
  for (const [index, line] of lines.entries()) {
    const offset = argsOf(line.body)
    if (offset < 0) continue
    const rewrite = rewriteArgs(line.body.slice(offset), resolve)
    for (const warning of rewrite.warnings) result.warnings.push(`${what} line ${index + 1}: ${warning}`)
    if (rewrite.reasons.length === 0) continue
    const after = line.body.slice(0, offset) + rewrite.text
    result.edits.push({line: index + 1, before: line.body, after, reason: `${rewrite.reasons.join('; ')}.`})
    line.body = after
  }
  if (result.edits.length > 0) result.text = joinLines(lines)
  return result
}

/** /etc/kernel/cmdline (kernel-install, systemd-boot, UKIs): arguments on one line; # lines are comments. */
export function rewriteKernelCmdlineFile(text: string, resolve: DeviceResolver): TransformResult {
  return rewriteArgLines(text, resolve, '/etc/kernel/cmdline', (body) => (body.trimStart().startsWith('#') ? -1 : 0))
}
