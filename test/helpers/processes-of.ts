import {readdirSync, readFileSync, readlinkSync} from 'node:fs'

export interface HostProcess {
  pid: number
  ppid: number
  /** argv joined by spaces. */
  command: string
}

function read(pid: number): (HostProcess & {state: string; cwd: string}) | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
    let cwd = ''
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`)
    } catch {
      // another user's process: its cwd is not ours to read
    }
    return {command, cwd, pid, ppid: Number(fields[1]), state: fields[0]!}
  } catch {
    return undefined // exited while we looked
  }
}

/**
 * Live processes (zombies excluded: they have exited) whose command line or working directory mentions
 * `dir`, and all their descendants: everything a job whose files live under `dir` has running, on the host,
 * found independently of the code under test.
 */
export function processesOf(dir: string): HostProcess[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => read(Number(name)))
    .filter((p): p is NonNullable<typeof p> => p !== undefined && p.state !== 'Z' && p.pid !== process.pid)
  const found = new Map<number, HostProcess>()
  const queue = all.filter((p) => p.command.includes(dir) || p.cwd.startsWith(dir))
  while (queue.length > 0) {
    const next = queue.shift()!
    if (found.has(next.pid)) continue
    found.set(next.pid, {command: next.command, pid: next.pid, ppid: next.ppid})
    queue.push(...all.filter((p) => p.ppid === next.pid))
  }
  return [...found.values()]
}

/** Whether `pid` runs (a zombie does not). */
export function running(pid: number): boolean {
  const p = read(pid)
  return p !== undefined && p.state !== 'Z'
}
