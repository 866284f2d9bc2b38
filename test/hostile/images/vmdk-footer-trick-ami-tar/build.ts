import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type BuiltCase, vmdkFooterTrick, writeMarker} from '../../../helpers/hostile-image-craft.js'
import {craftTar} from '../../../helpers/tar-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const disk = vmdkFooterTrick(join(dir, 'parts'), 'export-i-0123.vmdk', secret)
  mkdirSync(join(dir, 'input'), {recursive: true})
  const tarball = join(dir, 'input', 'export-i-0123.tar')
  writeFileSync(tarball, craftTar([{data: readFileSync(disk), name: 'export-i-0123.vmdk'}]))
  return {input: tarball, marker: secret}
}
