import {execFileSync} from 'node:child_process'
import {join} from 'node:path'

import {type BuiltCase, footerTrick, patternedRaw, streamOptimized, writeMarker} from '../../../helpers/hostile-image-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const raw = patternedRaw(join(dir, 'scratch.raw'))
  const vmdk = streamOptimized(raw, join(dir, 'input', 'disk.vmdk'))
  execFileSync('rm', ['-f', raw])
  // 1 MiB is 2048 sectors; the first header claims twice that.
  return {input: footerTrick(vmdk, {firstCapacity: 4096n}), marker: secret}
}
