import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

/** Returns the document's file name. */
export async function build(dir: string, marker: string): Promise<string> {
  await writeFile(join(dir, 'job.yaml'), `input: disk.raw\nx:\n  ${'- '.repeat(200_000)}${marker}\n`)
  return 'job.yaml'
}
