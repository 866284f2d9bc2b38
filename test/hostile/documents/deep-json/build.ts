import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

/** Returns the document's file name. */
export async function build(dir: string, marker: string): Promise<string> {
  const depth = 100_000
  await writeFile(join(dir, 'job.json'), `{"input": "disk.raw", "x": ${'{"a":'.repeat(depth)}"${marker}"${'}'.repeat(depth)}}`)
  return 'job.json'
}
