import {type Dirent, existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

/**
 * Every file under `dir` (recursively) whose bytes contain `needle`. A daemon may still be running: a file
 * it replaced atomically since the listing (state_dir/stats.json's temporary file) is skipped.
 */
export function filesContaining(dir: string, needle: string): string[] {
  if (!existsSync(dir)) return []
  const hits: string[] = []
  for (const entry of listing(dir)) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    if (contentOf(path)?.includes(needle)) hits.push(path)
  }
  return hits
}

/** The recursive listing, taken again if a directory in it was removed while it was read (a job's work directory). */
function listing(dir: string, tries = 3): Dirent[] {
  try {
    return readdirSync(dir, {recursive: true, withFileTypes: true})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || tries <= 1) throw error
    return listing(dir, tries - 1)
  }
}

function contentOf(path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Every live process whose argv contains `needle`. */
export function argvContaining(needle: string): string[] {
  const hits: string[] = []
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (argv.includes(needle)) hits.push(`${pid}: ${argv.split('\0').join(' ')}`)
    } catch {
      // exited while we looked
    }
  }
  return hits
}
