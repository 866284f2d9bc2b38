import {execa} from 'execa'

import {H2KError} from '@hyper2kvm/plugin-api'
import {stderrTail} from '../errors/map-foreign-error.js'
import {childEnv} from '../exec/child-env.js'
import {findOnPath} from '../exec/find-on-path.js'
import {bwrapArgv, hostSystemDirs} from './bwrap-argv.js'

/** One probe per bwrap binary and process: whether it can build the sandbox here does not change while we run. */
const probes = new Map<string, Promise<void>>()

function unavailable(why: string, detail?: string): H2KError {
  return new H2KError('H2K_SANDBOX_UNAVAILABLE', `The qemu sandbox cannot be used: ${why}${detail ? `: ${detail}` : ''}.`, {phase: 'setup'})
}

/**
 * The bwrap executable, once it has been seen to build a sandbox exactly as the tools get it (user and
 * pid namespaces, a tmpfs root, no network) and run a program inside. Throws H2K_SANDBOX_UNAVAILABLE when
 * bubblewrap is missing or the kernel refuses (user namespaces disabled, seccomp in a container...).
 */
export async function sandboxRunner(): Promise<string> {
  const bwrap = findOnPath('bwrap')
  if (bwrap === undefined) throw unavailable('bubblewrap (bwrap) is not installed or not on PATH')
  const trueBin = findOnPath('true', '/usr/bin:/bin')
  if (trueBin === undefined) throw unavailable('/usr/bin/true is missing')
  let probe = probes.get(bwrap)
  if (probe === undefined) {
    const argv = bwrapArgv({argv: [trueBin], bwrap, system: hostSystemDirs(), view: {binds: [], devices: []}})
    probe = execa(argv[0]!, argv.slice(1), {encoding: 'utf8', env: childEnv(), extendEnv: false, reject: false, stdin: 'ignore', timeout: 30_000}).then((result) => {
      if (result.exitCode !== 0) throw unavailable('bubblewrap cannot create a sandbox on this host (are user namespaces disabled?)', stderrTail(result.stderr, 2) || result.shortMessage)
    })
    probes.set(bwrap, probe)
  }
  await probe
  return bwrap
}
