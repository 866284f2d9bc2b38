import {randomBytes} from 'node:crypto'
import {rename, rm, writeFile} from 'node:fs/promises'

import {mapForeignError} from '../errors/map-foreign-error.js'

/**
 * Write a small file atomically without ever following a symlink: the temporary name is created with
 * O_CREAT|O_EXCL (which refuses an existing name, a symlink included) and a random suffix, then renamed
 * over `path` (rename replaces a symlink there instead of writing through it). Mode 0640 before the umask.
 */
export async function writeNewFileAtomic(path: string, content: string): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(temp, content, {flag: 'wx', mode: 0o640})
    await rename(temp, path)
  } catch (error) {
    await rm(temp, {force: true})
    throw mapForeignError(error, {path})
  }
}
