import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import Database from 'better-sqlite3'

import {CLI} from './run-cli.js'

export interface Job {
  id: string
  name: string
  source_path: string
  status: string
  attempts: number
  output_path: string
  error: string | null
  started_at: string | null
  completed_at: string | null
}

export interface RunningDaemon {
  child: ChildProcess
  stderr: () => string
  /** Everything the daemon logged: stderr, then its log_file (named by the daemon:start notice) when it has one. */
  log: () => string
  exited: Promise<number | null>
}

export const today = (): string => new Date().toISOString().slice(0, 10)

/** Start a real daemon process (as `as.uid`/`as.gid` through setpriv when given); resolves once its control socket exists. */
export async function startDaemon(args: string[], out = args[args.indexOf('--output-dir') + 1]!, as?: {uid: number; gid: number}, options: {bare?: boolean; env?: NodeJS.ProcessEnv; socket?: string} = {}): Promise<RunningDaemon> {
  // A daemon with a state_dir of its own listens there (options.socket), not in output_dir/.daemon/.
  const socket = options.socket ?? join(out, '.daemon', 'control.sock')
  // bare: `hyper2kvm --config FILE …` (no command: routed to the daemon by the file's `command: daemon`).
  const command = options.bare ? [process.execPath, CLI, ...args, '--stability-interval', '100'] : [process.execPath, CLI, 'daemon', '--stability-interval', '100', ...args]
  const [file, ...rest] = as ? ['setpriv', `--reuid=${as.uid}`, `--regid=${as.gid}`, '--clear-groups', '--', ...command] : command
  const child = spawn(file!, rest, {env: {...process.env, ...options.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr!.on('data', (chunk) => (stderr += chunk))
  child.stdout!.resume()
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  // The socket exists once the daemon owns the output directory; `daemon:start` once its store is open.
  for (let i = 0; i < 400 && !(existsSync(socket) && stderr.includes('daemon:start')); i++) {
    if (child.exitCode !== null) break
    await sleep(50)
  }
  assert.ok(existsSync(socket), `daemon did not start:\n${stderr}`)
  const log = () => {
    const file = /daemon:start\b.*?log_file[=":]+([^\s",]+)/.exec(stderr)?.[1]
    return file !== undefined && existsSync(file) ? `${stderr}${readFileSync(file, 'utf8')}` : stderr
  }
  return {child, exited, log, stderr: () => stderr}
}

export function jobs(out: string): Job[] {
  const path = join(out, '.daemon', 'jobs.db')
  if (!existsSync(path)) return []
  const db = new Database(path, {readonly: true})
  try {
    return db.prepare('SELECT * FROM jobs ORDER BY created_at').all() as Job[]
  } finally {
    db.close()
  }
}

export function history(out: string, id: string): string[] {
  const db = new Database(join(out, '.daemon', 'jobs.db'), {readonly: true})
  try {
    return (db.prepare('SELECT to_status FROM job_history WHERE job_id = ? ORDER BY id').all(id) as Array<{to_status: string}>).map((r) => r.to_status)
  } finally {
    db.close()
  }
}

export async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000, daemon?: RunningDaemon, pollMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    const value = fn()
    if (value) return value
    await sleep(pollMs)
  }
  throw new Error(`timed out waiting for ${what}${daemon ? `\n${daemon.stderr()}` : ''}`)
}

export const jobOf = (out: string, file: string, status?: string): Job | undefined => jobs(out).find((j) => j.source_path === file && (status === undefined || j.status === status))


/** afterEach: SIGKILL what is still running (a failed test must not leave a daemon behind). */
export async function killAll(daemons: RunningDaemon[]): Promise<void> {
  for (const d of daemons.splice(0)) {
    if (d.child.exitCode === null && d.child.signalCode === null) {
      d.child.kill('SIGKILL')
      await d.exited
    }
  }
}
