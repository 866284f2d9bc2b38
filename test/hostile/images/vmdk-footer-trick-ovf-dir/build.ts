import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type BuiltCase, vmdkFooterTrick, writeMarker} from '../../../helpers/hostile-image-craft.js'
import {ovfText} from '../../../helpers/ovf-fixtures.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const folder = join(dir, 'input', 'appliance')
  vmdkFooterTrick(folder, 'disk1.vmdk', secret)
  writeFileSync(join(folder, 'appliance.ovf'), ovfText('appliance', [{href: 'disk1.vmdk', id: 'vmdisk1'}]))
  return {input: folder, marker: secret}
}
