import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

/** Returns the document's file name. */
export async function build(dir: string, marker: string): Promise<string> {
  // Stage options are a plugin's and may be credentials: a malformed one is refused without its value.
  await writeFile(join(dir, 'job.json'), JSON.stringify({input: 'disk.raw', stage_options: {'fixer:fstab': `\u001b[2J${marker}`}}))
  return 'job.json'
}
