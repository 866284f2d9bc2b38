import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type BuiltCase, patternedRaw, writeMarker} from '../../../helpers/hostile-image-craft.js'
import {ovfText} from '../../../helpers/ovf-fixtures.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const folder = join(dir, 'input', 'deep')
  mkdirSync(folder, {recursive: true})
  patternedRaw(join(folder, 'disk1.raw'))
  const depth = 500
  const nested = `<Annotation>${'<x>'.repeat(depth)}deep${'</x>'.repeat(depth)}</Annotation>`
  writeFileSync(join(folder, 'deep.ovf'), ovfText('deep', [{href: 'disk1.raw', id: 'vmdisk1'}]).replace('</VirtualSystem>', `${nested}</VirtualSystem>`))
  return {input: join(folder, 'deep.ovf'), marker: secret}
}
