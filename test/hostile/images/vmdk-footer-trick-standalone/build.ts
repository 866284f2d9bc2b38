import {join} from 'node:path'

import {type BuiltCase, vmdkFooterTrick, writeMarker} from '../../../helpers/hostile-image-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  return {input: vmdkFooterTrick(join(dir, 'input'), 'disk.vmdk', secret), marker: secret}
}
