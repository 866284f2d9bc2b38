import {readFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'

/** What /proc says about one process: enough to find its children and to tell it from a later one. */
export interface ProcessStat {
  pid: number
  /** One letter: R, S, D, Z (zombie: exited, not yet reaped), ... */
  state: string
  ppid: number
  /**
   * Clock ticks after boot at which the process started. A pid is reused once its process is gone; the
   * pair (pid, start time) within one boot is not.
   */
  startTime: string
}

/** Parse /proc/PID/stat. The command name may hold spaces and ')': fields are counted after the last ')'. */
export function parseStat(pid: number, text: string): ProcessStat | undefined {
  const close = text.lastIndexOf(')')
  if (close < 0) return undefined
  // After ") " come field 3 (state), 4 (ppid), ... 22 (starttime): field N is at index N - 3.
  const fields = text.slice(close + 2).trim().split(' ')
  const [state, ppid, startTime] = [fields[0], Number(fields[1]), fields[19]]
  if (!state || !Number.isInteger(ppid) || !startTime || !/^\d+$/.test(startTime)) return undefined
  return {pid, ppid, startTime, state}
}

export async function processStat(pid: number): Promise<ProcessStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  return text === undefined ? undefined : parseStat(pid, text)
}

export function processStatSync(pid: number): ProcessStat | undefined {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return undefined // no such process (or no /proc): not running
  }
}

/** Identifies this boot: start times are only comparable within one. */
export async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
}
