import {execFileSync} from 'node:child_process'
import {join} from 'node:path'

import {type BuiltCase, monolithicSparse, patternedRaw, replaceEmbeddedDescriptor, writeMarker} from '../../../helpers/hostile-image-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const raw = patternedRaw(join(dir, 'scratch.raw'))
  const vmdk = monolithicSparse(raw, join(dir, 'input', 'disk.vmdk'))
  execFileSync('rm', ['-f', raw])
  replaceEmbeddedDescriptor(vmdk, (text) => text.replace(/^(RW \d+ SPARSE )"[^"]*"/m, `$1"${secret}"`))
  return {input: vmdk, marker: secret}
}
