import {accessSync, constants, statSync} from 'node:fs'
import {delimiter, isAbsolute, join} from 'node:path'

/**
 * The absolute path of an executable as a shell would find it on PATH, or undefined. Wrapped tools (under
 * bwrap or setpriv) are started by path: the wrapper's own "not found" would otherwise hide which tool is missing.
 */
export function findOnPath(file: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = file.includes('/') ? [file] : path.split(delimiter).filter((dir) => isAbsolute(dir)).map((dir) => join(dir, file))
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK)
      if (statSync(candidate).isFile()) return candidate
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'EACCES' && code !== 'ENOTDIR') throw error
    }
  }
  return undefined
}
