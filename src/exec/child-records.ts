import {mkdir, readdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {isAlive, killTree, waitGone} from './kill-tree.js'
import {bootId, processStat} from './process-identity.js'

/** One recorded child, as `<dir>/<pid>.json`. */
export interface ChildRecord {
  pid: number
  /** /proc/PID/stat starttime: tells this process from a later one that got the same pid. */
  start_time: string
  boot_id: string
  /** What it is, for logs: "guestfish listener", "libguestfs appliance (qemu)". */
  what: string
  /** The job's work directory, for logs. */
  work_dir?: string
  /** The process that recorded it. */
  recorded_by: number
  recorded_at: string
}

export interface RecordedChild {
  readonly pid: number
  /** The child ended normally: drop its record. */
  forget(): Promise<void>
}

export type ReapOutcome =
  /** It was still running, left over from an earlier instance: killed, with its descendants. */
  | 'reaped'
  /** It had ended already. */
  | 'gone'
  /** Its pid now belongs to another process (different start time or boot): left alone. */
  | 'reused'
  /** The record could not be read: removed. */
  | 'invalid'

export interface Reaped {
  pid?: number
  what?: string
  work_dir?: string
  outcome: ReapOutcome
}

function parseRecord(text: string): ChildRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<ChildRecord>
    if (!Number.isInteger(value.pid) || value.pid! <= 1) return undefined
    if (typeof value.start_time !== 'string' || !/^\d+$/.test(value.start_time) || typeof value.boot_id !== 'string') return undefined
    return value as ChildRecord
  } catch {
    return undefined
  }
}

/**
 * Long-lived children that detach from us (the libguestfs listener daemonizes, and its qemu is its child,
 * not ours), recorded in a directory of the daemon's state so that the next instance can reap them if this
 * one is killed before it could. A record holds the pid *and* its start time: the reaper kills only the
 * very process that was recorded, never an unrelated one that got the same pid later.
 */
export class ChildRecords {
  constructor(readonly dir: string) {}

  /** Record a running process; undefined when it has already exited (nothing to record). */
  async record(pid: number, what: string, workDir?: string): Promise<RecordedChild | undefined> {
    const stat = await processStat(pid)
    if (!stat || stat.state === 'Z') return undefined
    const record: ChildRecord = {
      boot_id: await bootId(),
      pid,
      recorded_at: new Date().toISOString(),
      recorded_by: process.pid,
      start_time: stat.startTime,
      what,
      ...(workDir === undefined ? {} : {work_dir: workDir}),
    }
    await mkdir(this.dir, {mode: 0o700, recursive: true})
    const path = join(this.dir, `${pid}.json`)
    const temporary = `${path}.${process.pid}.tmp`
    await writeFile(temporary, `${JSON.stringify(record)}\n`, {mode: 0o600})
    await rename(temporary, path)
    return {forget: () => rm(path, {force: true}), pid}
  }

  /**
   * Kill every recorded process that is still the one recorded (same boot, same start time), with its
   * descendants, and clear the records. Call it only when no other instance can be using them (the
   * daemon does so after it has made sure it alone owns its output directory).
   */
  async reap(): Promise<Reaped[]> {
    const names = await readdir(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[]
      throw error
    })
    const results: Reaped[] = []
    const killed: number[] = []
    const boot = await bootId()
    // A record half-written when the recorder died never became a record.
    for (const name of names.filter((n) => n.endsWith('.tmp'))) await rm(join(this.dir, name), {force: true})
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const path = join(this.dir, name)
      const record = parseRecord(await readFile(path, 'utf8').catch(() => ''))
      if (!record) {
        results.push({outcome: 'invalid'})
      } else {
        const stat = await processStat(record.pid)
        const same = stat !== undefined && stat.state !== 'Z' && record.boot_id === boot && stat.startTime === record.start_time
        let outcome: ReapOutcome = 'gone'
        if (same && record.pid !== process.pid) {
          await killTree(record.pid)
          killed.push(record.pid)
          outcome = 'reaped'
        } else if (stat !== undefined && isAlive(record.pid)) {
          outcome = 'reused'
        }
        results.push({outcome, pid: record.pid, what: record.what, ...(record.work_dir === undefined ? {} : {work_dir: record.work_dir})})
      }
      await rm(path, {force: true})
    }
    // SIGKILL cannot be ignored; wait briefly so that whatever runs next (removing the job's output
    // directory, a new attempt) does not race a dying process.
    await waitGone(killed, 5000)
    return results
  }
}
