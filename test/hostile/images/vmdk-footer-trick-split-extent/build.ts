import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type BuiltCase, vmdkFooterTrick, writeMarker} from '../../../helpers/hostile-image-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const folder = join(dir, 'input')
  vmdkFooterTrick(folder, 'disk-s001.vmdk', secret)
  // The extent's honest footer says 1 MiB (2048 sectors), as the descriptor line does.
  const descriptor = '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="twoGbMaxExtentSparse"\n\nRW 2048 SPARSE "disk-s001.vmdk"\n\nddb.adapterType = "lsilogic"\n'
  writeFileSync(join(folder, 'disk.vmdk'), descriptor)
  return {input: join(folder, 'disk.vmdk'), marker: secret}
}
