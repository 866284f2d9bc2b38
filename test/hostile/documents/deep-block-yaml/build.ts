import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

/** Returns the document's file name. */
export async function build(dir: string, marker: string): Promise<string> {
  const lines = Array.from({length: 1000}, (_, i) => `${' '.repeat(i)}k${i}:`)
  await writeFile(join(dir, 'job.yaml'), `input: disk.raw\nx:\n${lines.map((l) => ` ${l}`).join('\n')} ${marker}\n`)
  return 'job.yaml'
}
