import {realpath} from 'node:fs/promises'

/** The real path when the file exists (symlinks resolved), else the path as given. */
export async function realOrSelf(path: string): Promise<string> {
  try {
    return await realpath(path)
  } catch {
    return path
  }
}
