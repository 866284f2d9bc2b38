import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type BuiltCase, vmdkFooterTrick, writeMarker} from '../../../helpers/hostile-image-craft.js'
import {ovfText} from '../../../helpers/ovf-fixtures.js'
import {craftTar} from '../../../helpers/tar-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const disk = vmdkFooterTrick(join(dir, 'parts'), 'disk1.vmdk', secret)
  mkdirSync(join(dir, 'input'), {recursive: true})
  const ova = join(dir, 'input', 'appliance.ova')
  const ovf = Buffer.from(ovfText('appliance', [{href: 'disk1.vmdk', id: 'vmdisk1'}]))
  writeFileSync(ova, craftTar([{data: ovf, name: 'appliance.ovf'}, {data: readFileSync(disk), name: 'disk1.vmdk'}]))
  return {input: ova, marker: secret}
}
