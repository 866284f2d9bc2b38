import {parseParam, tokenizeArgs} from './cmdline-tokens.js'
import {type DeviceResolver, isUnstableDevice} from './device-resolver.js'
import {rewriteArgLines} from './rewrite-kernel-cmdline.js'
import {splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

// `linux <kernel> args...` in GRUB 2 (linuxefi and linux16 on RHEL/SUSE), `kernel <kernel> args...` in GRUB legacy
// menu.lst. The arguments start after the kernel path.
const KERNEL_LINE = /^(\s*(?:linux|linuxefi|linux16|kernel)\s+\S+)/
// The other places a finished boot configuration holds a command line: BLS `options` and grubenv `kernelopts=`.
const ARGS_LINE = /^(\s*options\s+|kernelopts=)/

/**
 * Rewrite root= and resume= (and the other device arguments) on the kernel lines of grub.cfg, grub2.cfg or a GRUB
 * legacy menu.lst. This is the safety net after grub-mkconfig ran in the appliance, where the disk is /dev/sda and
 * 10_linux writes root=/dev/sda1 whenever UUIDs are disabled or unavailable. `set root='hd0,msdos1'`, search
 * lines, `${extra_cmdline}` and `$kernelopts` are left alone.
 */
export function rewriteGrubCfg(text: string, resolve: DeviceResolver): TransformResult {
  return rewriteArgLines(text, resolve, 'grub.cfg', (body) => KERNEL_LINE.exec(body)?.[1]?.length ?? -1)
}

/** A root= that would not be found on virtio. */
export interface UnstableRoot {
  line: number
  device: string
}

/**
 * The root= values left in a boot configuration that name a controller-dependent device: empty means every
 * kernel line finds its root on virtio. Reads grub.cfg/menu.lst kernel lines, BLS `options` lines and the grubenv
 * `kernelopts=` line, so one check covers every layout. root= given through a variable is not seen here.
 */
export function findUnstableRoots(text: string): UnstableRoot[] {
  const found: UnstableRoot[] = []
  for (const [index, line] of splitLines(text).entries()) {
    const head = KERNEL_LINE.exec(line.body) ?? ARGS_LINE.exec(line.body)
    if (!head) continue
    for (const token of tokenizeArgs(line.body.slice(head[0].length))) {
      const param = parseParam(token.text)
      if (param && (param.key === 'root' || param.key === 'real_root') && isUnstableDevice(param.value, 'stabilize-all')) {
        found.push({line: index + 1, device: param.value})
      }
    }
  }
  return found
}
