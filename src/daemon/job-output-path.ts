import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {today} from './layout.js'
import {outputDirName} from './output-name.js'
import type {JobStore} from './store.js'

/**
 * Where a daemon job writes: output_dir/<date>/<name>/, or <name>-<id> when that directory exists or any
 * job in the store (finished ones too: a retry clears its directory) owns it. The daemon decides this for
 * every job, whatever a document says.
 */
export function jobOutputPath(store: Pick<JobStore, 'outputPathOwner'>, outputDir: string, name: string, id: string, reserved: ReadonlySet<string> = new Set()): string {
  const day = join(outputDir, today())
  // Names come from dropped file names and documents: control characters never reach a directory name.
  const dirName = outputDirName(name, id)
  const path = join(day, dirName)
  return existsSync(path) || reserved.has(path) || store.outputPathOwner(path) !== undefined ? join(day, `${dirName}-${id}`) : path
}
