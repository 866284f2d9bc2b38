import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type BlockdevSpec, formatNode} from '@hyper2kvm/plugin-api'

export async function build(dir: string, marker: string): Promise<{spec: BlockdevSpec}> {
  const descriptor = join(dir, 'evil.vmdk')
  const extent = marker
  const lines = ['# Disk DescriptorFile', 'version=1', 'CID=fffffffe', 'parentCID=ffffffff', 'createType="monolithicFlat"', '', `RW 2048 FLAT "${extent}" 0`, '', 'ddb.virtualHWVersion = "4"', '']
  writeFileSync(descriptor, lines.join('\n'))
  return {spec: formatNode('vmdk', descriptor)}
}
