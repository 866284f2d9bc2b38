import {execFileSync, spawn} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

export const CLI = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** stdout parsed as JSON (only for --json runs). */
  json: any
}

/**
 * Run the real, built CLI (`bin/run.js`) as a user would; `as` is a command prefix (e.g. setpriv to run it as
 * another user), `env` is added to the environment.
 */
export function runCli(args: string[], options: {cwd?: string; env?: NodeJS.ProcessEnv; as?: string[]; onSpawn?: (pid: number) => void; input?: string} = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const argv = [...(options.as ?? []), process.execPath, CLI, ...args]
    const child = spawn(argv[0]!, argv.slice(1), {cwd: options.cwd, env: {...process.env, NO_COLOR: '1', ...options.env}, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']})
    if (options.input !== undefined) child.stdin!.end(options.input)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk) => (stdout += chunk))
    child.stderr!.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    if (child.pid) options.onSpawn?.(child.pid)
    child.on('close', (code, signal) => {
      let json: unknown
      try {
        json = JSON.parse(stdout)
      } catch {
        json = undefined
      }
      resolve({code, json, signal, stderr, stdout})
    })
  })
}

/** sha256 of a file of any size (guest disks are larger than a Node buffer may be). */
export function sha256(path: string): string {
  return execFileSync('sha256sum', ['--', path], {encoding: 'utf8'}).split(' ')[0]!
}

/** Every entry left in a directory (hidden ones included): after a failed job this must be empty. */
export function leftovers(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}
