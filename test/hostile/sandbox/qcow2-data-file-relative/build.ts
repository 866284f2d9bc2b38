import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join, relative} from 'node:path'

import {type BlockdevSpec, formatNode} from '@hyper2kvm/plugin-api'

/** qemu-img creates (empties) the data file it is told about, so the marker's content is put back after. */
export async function build(dir: string, marker: string): Promise<{spec: BlockdevSpec}> {
  const image = join(dir, 'evil.qcow2')
  const content = readFileSync(marker)
  // qemu resolves a relative data file against its working directory (ours), not the image's directory.
  const dataFile = relative(process.cwd(), marker)
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${dataFile},data_file_raw=on`, image, '1M'])
  writeFileSync(marker, content)
  // What a loader that checks only backing-filename would hand qemu: backing pinned, data file not.
  return {spec: formatNode('qcow2', image)}
}
