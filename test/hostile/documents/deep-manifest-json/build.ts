import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

/** Returns the document's file name. */
export async function build(dir: string, marker: string): Promise<string> {
  const depth = 300_000
  const deep = `${'['.repeat(depth)}"${marker}"${']'.repeat(depth)}`
  await writeFile(join(dir, 'manifest.json'), `{"version": "1.0", "pipeline": {"load": {"source_path": "disk.raw", "x": ${deep}}}}`)
  return 'manifest.json'
}
