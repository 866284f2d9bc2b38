import {execa} from 'execa'

import {mapForeignError, stderrTail} from '../errors/map-foreign-error.js'
import type {H2KError} from '@hyper2kvm/plugin-api'
import {childEnv} from '../exec/child-env.js'
import {unsandboxedArgv} from '../exec/launch-argv.js'
import {QEMU_SYSTEM} from './boot-args.js'

/** qemu's own messages are short; keep the end of them, whatever a broken build might print. */
const STDERR_KEEP = 16 * 1024

export interface QemuExit {
  exitCode: number | undefined
  signal: string | undefined
  /** The last lines qemu wrote to stderr (its warnings and errors, not the guest's console). */
  stderr: string
  /** Set when qemu could not be started at all (not installed, not executable): H2K_TOOL_MISSING and friends. */
  startError: H2KError | undefined
}

export interface RunningQemu {
  /** The full argv, program first, for reports. */
  readonly command: readonly string[]
  /** Undefined when qemu could not be started. */
  readonly pid: number | undefined
  /** Resolves (never rejects) once the process has exited. */
  readonly exited: Promise<QemuExit>
  hasExited(): boolean
  /** SIGTERM, then SIGKILL after the grace period; resolves only once qemu is gone. */
  stop(): Promise<QemuExit>
}

export interface StartQemuOptions {
  /** Receives what qemu writes to stdout (the serial console when it is on stdio). Stdout is ignored otherwise. */
  onStdout?: (chunk: string) => void
  /** How long qemu may take to exit after SIGTERM before it is killed. */
  stopGraceMs?: number
  /** The full argv to spawn (launchArgv: qemu inside the bwrap sandbox); default qemu under a parent-death signal. */
  launch?: readonly string[]
}

/**
 * Start qemu-system-x86_64 as a long-running child we watch and stop ourselves (runTool waits for an exit,
 * which a booting guest never does). Output is streamed, never buffered whole.
 */
export function startQemu(args: readonly string[], options: StartQemuOptions = {}): RunningQemu {
  let stderr = ''
  let done = false
  // Not on PATH: spawn it by name anyway, so the start error says which tool is missing.
  const [program, ...rest] = options.launch ?? unsandboxedArgv(QEMU_SYSTEM, args) ?? [QEMU_SYSTEM, ...args]
  const child = execa(program!, rest, {
    buffer: false,
    encoding: 'utf8',
    env: childEnv(),
    extendEnv: false,
    forceKillAfterDelay: options.stopGraceMs ?? 5000,
    reject: false,
    stdin: 'ignore',
    stdout: options.onStdout ? 'pipe' : 'ignore',
    stderr: 'pipe',
  })
  child.stderr?.on('data', (chunk: Buffer | string) => {
    stderr = (stderr + chunk.toString()).slice(-STDERR_KEEP)
  })
  if (options.onStdout) {
    const onStdout = options.onStdout
    child.stdout?.on('data', (chunk: Buffer | string) => onStdout(chunk.toString()))
  }
  const exited = child.then((result): QemuExit => {
    done = true
    // No exit code and no signal: the process never ran (ENOENT, EACCES), which mapForeignError names.
    const neverRan = result.failed && result.exitCode === undefined && result.signal === undefined
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      startError: neverRan ? mapForeignError(result, {phase: 'verify', tool: QEMU_SYSTEM}) : undefined,
      stderr: stderrTail(stderr, 12),
    }
  })
  return {
    command: [QEMU_SYSTEM, ...args],
    exited,
    pid: child.pid,
    hasExited: () => done,
    async stop() {
      if (!done) child.kill('SIGTERM')
      return exited
    },
  }
}
