import {symlinkSync} from 'node:fs'
import {join} from 'node:path'

import {type BuiltCase, qcow2WithDataFile, writeMarker} from '../../../helpers/hostile-image-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const input = qcow2WithDataFile(join(dir, 'input', 'disk.qcow2'), 'disk-data.raw')
  symlinkSync(secret, join(dir, 'input', 'disk-data.raw'))
  return {input, marker: secret}
}
