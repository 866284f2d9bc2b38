import {readdir} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import {processStat, processStatSync} from './process-identity.js'

/** Every descendant of `pid` (children first found, then theirs), from /proc. */
export async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>()
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await processStat(Number(entry))
    if (!stat) continue
    const list = parents.get(stat.ppid) ?? []
    list.push(stat.pid)
    parents.set(stat.ppid, list)
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

/**
 * Whether `pid` still runs. A zombie does not: it has exited and only waits for a parent to collect it (a
 * daemonized process's parent is init, and not every init collects promptly).
 */
export function isAlive(pid: number): boolean {
  const stat = processStatSync(pid)
  return stat !== undefined && stat.state !== 'Z'
}

/** Wait until none of `pids` runs; false if some still do after `timeoutMs`. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (!pids.some((pid) => isAlive(pid))) return true
    if (Date.now() > end) return false
    await sleep(50)
  }
}
