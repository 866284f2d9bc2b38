import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

/** Every file under `dir` (recursively) whose bytes contain `needle`. */
export function filesContaining(dir: string, needle: string): string[] {
  if (!existsSync(dir)) return []
  const hits: string[] = []
  for (const entry of readdirSync(dir, {recursive: true, withFileTypes: true})) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    if (readFileSync(path).includes(needle)) hits.push(path)
  }
  return hits
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
