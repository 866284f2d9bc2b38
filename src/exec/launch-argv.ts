import {realpathSync} from 'node:fs'
import {dirname} from 'node:path'

import {H2KError, type SandboxView} from '@hyper2kvm/plugin-api'
import {toolMissing} from '../errors/map-foreign-error.js'
import {bwrapArgv, hostSystemDirs, resolveView} from '../sandbox/bwrap-argv.js'
import {sandboxRunner} from '../sandbox/sandbox-probe.js'
import {findOnPath} from './find-on-path.js'

export interface Launch {
  /** The argv to spawn, wrapper first. */
  argv: string[]
  /** Whether the tool runs inside bwrap (which reports a child killed by signal N as exit code 128+N). */
  sandboxed: boolean
}

export interface LaunchOptions {
  /** A view: run the tool in a bwrap sandbox that shows it only that. false or absent: run it unsandboxed. */
  sandbox?: SandboxView | false
  cwd?: string
  /** Extra environment; inside the sandbox it is all the tool gets besides PATH and TMPDIR. */
  env?: Readonly<Record<string, string>>
}

/**
 * An unsandboxed child must still die with us (`kill -9` of the daemon must not leave a qemu-img writing
 * a `.part`): setpriv sets PR_SET_PDEATHSIG and execs the tool, so the tool is our direct child with it set.
 * The tool keeps its plain name as argv[0] (setpriv finds it on the same PATH), so process listings read as before.
 */
function dieWithUs(argv: readonly string[]): string[] {
  const setpriv = findOnPath('setpriv')
  if (setpriv === undefined) throw toolMissing('setpriv')
  return [setpriv, '--pdeathsig', 'KILL', '--', ...argv]
}

/** An unsandboxed tool's argv (setpriv first), or undefined when `file` is not on PATH. */
export function unsandboxedArgv(file: string, args: readonly string[]): string[] | undefined {
  return findOnPath(file) === undefined ? undefined : dieWithUs([file, ...args])
}

/** How to start `file`: inside bwrap with the given view, else under setpriv's parent-death signal. */
export async function launchArgv(file: string, args: readonly string[], options: LaunchOptions = {}): Promise<Launch> {
  const found = findOnPath(file)
  if (found === undefined) throw toolMissing(file)
  if (!options.sandbox) return {argv: dieWithUs([file, ...args]), sandboxed: false}
  const bwrap = await sandboxRunner()
  // Inside, only /usr (and the merged-/usr links to it) exists.
  const program = realpathSync(found)
  if (!program.startsWith('/usr/')) {
    throw new H2KError('H2K_SANDBOX_UNAVAILABLE', `${program} is outside /usr, so the sandbox cannot show it; install ${file} from the distribution's packages.`, {phase: 'setup'})
  }
  // Started by its plain name on a PATH whose first entry is where we found it: the same binary, named as usual.
  const argv = bwrapArgv({argv: [file, ...args], bwrap, cwd: options.cwd, env: options.env, path: dirname(program), system: hostSystemDirs(), view: resolveView(options.sandbox)})
  return {argv, sandboxed: true}
}
