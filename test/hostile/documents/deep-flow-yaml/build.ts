import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

/** Returns the document's file name. */
export async function build(dir: string, marker: string): Promise<string> {
  const head = `input: disk.raw\nnote: ${marker}\nx: `
  await writeFile(join(dir, 'job.yaml'), head + '['.repeat(1024 * 1024 - head.length - 64))
  return 'job.yaml'
}
