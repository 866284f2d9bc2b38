import type {DeviceResolver} from './device-resolver.js'
import {rewriteArgLines} from './rewrite-kernel-cmdline.js'
import type {TransformResult} from './transform-result.js'

/** grub-editenv writes the environment block as exactly this many bytes. */
export const GRUBENV_SIZE = 1024

const KERNELOPTS = /^(kernelopts=)/

/**
 * Rewrite the `kernelopts=` variable of /boot/grub2/grubenv (RHEL 8 keeps the kernel command line there and BLS
 * entries refer to it as $kernelopts). GRUB reads the block as a fixed-size file padded with '#', so the text
 * after the last newline is padding and is shrunk by exactly what the variables grew: the file keeps its size
 * (1024 bytes). When the padding cannot absorb the growth, or the file does not look like an environment block,
 * nothing changes and a warning says why: a wrong-sized grubenv makes GRUB ignore it.
 */
export function rewriteGrubenv(text: string, resolve: DeviceResolver): TransformResult {
  const unchanged = (warning: string): TransformResult => ({text, edits: [], warnings: [warning]})
  const split = text.lastIndexOf('\n') + 1
  const padding = text.slice(split)
  if (split === 0 || !/^#*$/.test(padding)) {
    return unchanged('grubenv: not a GRUB environment block (no # padding after the last variable); left as is.')
  }
  const rewrite = rewriteArgLines(text.slice(0, split), resolve, 'grubenv', (body) => KERNELOPTS.exec(body)?.[1]?.length ?? -1)
  if (rewrite.edits.length === 0) return {...rewrite, text}
  const size = Buffer.byteLength(text, 'utf8')
  const room = size - Buffer.byteLength(rewrite.text, 'utf8')
  if (room < 0) return unchanged(`grubenv: the rewritten variables need ${-room} more bytes than the ${size}-byte block holds; left as is.`)
  return {...rewrite, text: rewrite.text + '#'.repeat(room)}
}
