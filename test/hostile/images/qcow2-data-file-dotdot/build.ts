import {join} from 'node:path'

import {type BuiltCase, qcow2WithDataFile, writeMarker} from '../../../helpers/hostile-image-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  return {input: qcow2WithDataFile(join(dir, 'input', 'disk.qcow2'), '../secret/marker'), marker: secret}
}
