import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {formatNode} from '../../../../src/qemu/image-spec.js'
import type {BlockdevSpec} from '../../../../src/stages/stage-types.js'

export async function build(dir: string, marker: string): Promise<{spec: BlockdevSpec}> {
  const descriptor = join(dir, 'evil.vmdk')
  const extent = marker
  const lines = ['# Disk DescriptorFile', 'version=1', 'CID=fffffffe', 'parentCID=ffffffff', 'createType="monolithicFlat"', '', `RW 2048 FLAT "${extent}" 0`, '', 'ddb.virtualHWVersion = "4"', '']
  writeFileSync(descriptor, lines.join('\n'))
  return {spec: formatNode('vmdk', descriptor)}
}
