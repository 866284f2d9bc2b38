import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'

import {until} from './daemon-process.js'

export interface SecretService {
  /** Environment for a process that should use it: the bus address, and HOME where the keyring file lives. */
  env: Record<string, string>
  stop(): Promise<void>
}

/**
 * A real Secret Service for tests: a private D-Bus session bus (dbus-daemon) and gnome-keyring-daemon
 * (components=secrets) unlocked with a throw-away password, both our children, their files under `dir`.
 */
export async function startSecretService(dir: string): Promise<SecretService> {
  const runtime = join(dir, 'run')
  mkdirSync(runtime, {mode: 0o700, recursive: true})
  const bus = join(runtime, 'bus')
  const env = {DBUS_SESSION_BUS_ADDRESS: `unix:path=${bus}`, HOME: dir, XDG_RUNTIME_DIR: runtime}
  const children: ChildProcess[] = []
  const stop = async (): Promise<void> => {
    for (const child of children.reverse()) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
    }
  }
  try {
    children.push(spawn('dbus-daemon', ['--session', '--nofork', `--address=unix:path=${bus}`], {env: {...process.env, ...env}, stdio: 'ignore'}))
    await until('the session bus socket', () => existsSync(bus), 10_000)
    const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {env: {...process.env, ...env}, stdio: ['pipe', 'ignore', 'ignore']})
    children.push(keyring)
    keyring.stdin!.end('test-keyring-password')
    await until('gnome-keyring-daemon\'s control socket', () => existsSync(join(runtime, 'keyring', 'control')), 10_000)
  } catch (error) {
    await stop()
    throw error
  }
  return {env, stop}
}
