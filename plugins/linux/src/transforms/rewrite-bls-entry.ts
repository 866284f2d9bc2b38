import type {DeviceResolver} from './device-resolver.js'
import {rewriteArgLines} from './rewrite-kernel-cmdline.js'
import type {TransformResult} from './transform-result.js'

const OPTIONS_LINE = /^(\s*options\s+)/

/**
 * Rewrite the `options` line of a Boot Loader Specification entry (/boot/loader/entries/*.conf: Fedora, RHEL 8+,
 * systemd-boot). On RHEL 8 the line usually reads `options $kernelopts $tuned_params`: GRUB's blscfg expands
 * $kernelopts from grubenv at boot, so the devices live there (see rewriteGrubenv) and the variables stay.
 */
export function rewriteBlsEntry(text: string, resolve: DeviceResolver): TransformResult {
  return rewriteArgLines(text, resolve, 'BLS entry', (body) => OPTIONS_LINE.exec(body)?.[1]?.length ?? -1)
}
