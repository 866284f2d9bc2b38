// The job-file loader: size cap, YAML/JSON parse with positions, kind detection, schema validation, job plan.
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {validateFile} from '../../src/jobs/validate-file.js'
import {h2kRefusal} from './engine/refusal.js'
import type {FuzzTarget} from './engine/target.js'

export const target: FuzzTarget = {
  async run(data, scratch) {
    const file = join(scratch, 'job.yaml')
    await writeFile(file, data)
    await validateFile(file)
  },
  refusalCode: h2kRefusal,
  alsoCover: ['yaml'],
  maxLength: 16 * 1024,
  dictionary: [
    'input: ', 'output_dir: ', 'out_format: ', 'qcow2', 'raw', 'jobs:\n', '  - name: a\n', '    input: x.vmdk\n', 'restrict_inputs_to: ', 'compress: true\n',
    'version: "1.0"\n', 'pipeline:\n', 'load:\n', 'source_type: ', 'source_path: ', 'watch_dir: ', 'daemon:\n', 'concurrency: ', '&a ', '*a', '<<: *a\n',
    '!!binary ', '!!str ', '? ', '- ', '{', '}', '[', ']', '"', "'", '|\n', '>-\n', '---\n', '...\n', '%YAML 1.2\n', '%TAG ! tag:x,2000:\n', '~', '.inf', '0x1F', '1e400',
    '../', '/etc/shadow', '\t', '#',
  ],
}
