import {join} from 'node:path'

import {type BuiltCase, patternedRaw, qcow2WithDataFile, writeMarker} from '../../../helpers/hostile-image-craft.js'

export async function build(dir: string, marker: string): Promise<BuiltCase> {
  const secret = writeMarker(dir, marker)
  const data = patternedRaw(join(dir, 'input', 'disk-data.raw'))
  // The data file keeps its content: with data_file_raw the guest disk is exactly that file.
  const input = qcow2WithDataFile(join(dir, 'input', 'disk.qcow2'), 'disk-data.raw', {keepData: data})
  return {expected: {format: 'raw', path: data}, input, marker: secret}
}
