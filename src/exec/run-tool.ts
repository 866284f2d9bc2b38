import {closeSync, openSync} from 'node:fs'

import {mapForeignError} from '../errors/map-foreign-error.js'
import type {ResourceLimits, ToolOptions, ToolResult} from '@hyper2kvm/plugin-api'
import {childEnv} from './child-env.js'
import {launchArgv} from './launch-argv.js'

/** execa (~100 modules) is imported by the first tool run, not by every module that can run a tool. */
let execaModule: Promise<typeof import('execa')> | undefined
const loadExeca = (): Promise<typeof import('execa')> => (execaModule ??= import('execa'))

/** The limits we put on `qemu-img info` of untrusted inputs, as virt-v2v and OpenStack do. */
export const INSPECT_LIMITS: ResourceLimits = {addressSpaceBytes: 1024 * 1024 * 1024, cpuSeconds: 30}

/**
 * Run an external tool with an argument array (never a shell string), killing it when `signal` aborts.
 * Failures are mapped to H2KError here, so every caller gets stable codes.
 */
export async function runTool(file: string, args: readonly string[], options: ToolOptions = {}): Promise<ToolResult> {
  const launch = await launchArgv(file, args, {cwd: options.cwd, env: options.env, sandbox: options.sandbox})
  // prlimit outside the sandbox: the limits hold for bwrap and everything it starts.
  const argv = options.limits
    ? ['prlimit', `--as=${options.limits.addressSpaceBytes}`, `--cpu=${options.limits.cpuSeconds}`, '--', ...launch.argv]
    : launch.argv
  const [command, ...rest] = argv as [string, ...string[]]
  const {execa} = await loadExeca()
  const outputFd = options.stdoutFile === undefined ? undefined : openSync(options.stdoutFile, 'w', 0o600)
  const child = execa(command, rest, {
    cancelSignal: options.signal,
    forceKillAfterDelay: 5000,
    // (Inside the sandbox bwrap clears the environment and sets only PATH, TMPDIR and options.env.) Outside it,
    // the tool gets ours without secrets and systemd's private variables.
    env: childEnv(options.env),
    extendEnv: false,
    cwd: options.cwd,
    input: options.input,
    stdin: options.input === undefined ? 'ignore' : 'pipe',
    // A raw file descriptor: the child (and anything it forks) writes straight to the file, no pipe.
    // (execa accepts a descriptor number at run time; its types only list 3-9 for stdio arrays.)
    ...(outputFd === undefined ? {} : ({stderr: outputFd, stdout: outputFd} as unknown as {stdout: 'pipe'; stderr: 'pipe'})),
    stripFinalNewline: false,
    encoding: 'utf8',
    reject: false,
  })
  if (options.onStdout) {
    const onStdout = options.onStdout
    child.stdout?.on('data', (chunk: Buffer | string) => onStdout(chunk.toString()))
  }
  const result = await child.finally(() => outputFd !== undefined && closeSync(outputFd))
  const accepted = result.exitCode !== undefined && (result.exitCode === 0 || (options.acceptExitCodes ?? []).includes(result.exitCode))
  if (result.failed && !(accepted && !result.isCanceled && result.signal === undefined)) {
    throw mapForeignError(result, {limited: options.limits !== undefined, phase: options.phase, sandboxed: launch.sandboxed, stage: options.stage, tool: file})
  }
  return {command: argv, exitCode: result.exitCode ?? 0, sandboxed: launch.sandboxed, stderr: String(result.stderr), stdout: String(result.stdout)}
}
