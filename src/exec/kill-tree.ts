import {readFile, readdir} from 'node:fs/promises'

/** Every descendant of `pid` (children first found, then theirs), from /proc. */
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>()
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // The command name may contain spaces and parentheses: the ppid is the 2nd field after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (!Number.isFinite(ppid)) continue
    const list = parents.get(ppid) ?? []
    list.push(Number(entry))
    parents.set(ppid, list)
  }
  const found: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    for (const child of parents.get(queue.shift()!) ?? []) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

/**
 * Kill a process that daemonized itself (guestfish --listen) together with everything it started (the
 * appliance's qemu), so a cancelled job leaves no process behind.
 */
export async function killTree(pid: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const all = [pid, ...(await descendants(pid))]
  for (const target of all.reverse()) {
    try {
      process.kill(target, signal)
    } catch {
      // already gone
    }
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
