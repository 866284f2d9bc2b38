import {existsSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runTool} from '../exec/run-tool.js'

/** supermin's name for this host's CPU (libguestfs passes it as --host-cpu). */
const HOST_CPU: Record<string, string> = {arm64: 'aarch64', ppc64: 'ppc64le', s390x: 's390x', x64: 'x86_64'}

/** Where libguestfs looks for its supermin appliance description: LIBGUESTFS_PATH, else Debian's default. */
function superminDir(env: NodeJS.ProcessEnv): string | undefined {
  const multiarch = `${HOST_CPU[process.arch] ?? process.arch}-linux-gnu`
  const paths = (env.LIBGUESTFS_PATH ?? `/usr/lib/${multiarch}/guestfs`).split(':').filter(Boolean)
  return paths.map((path) => join(path, 'supermin.d')).find((dir) => existsSync(dir))
}

/**
 * libguestfs builds its appliance with supermin at a user's first launch, and checks it at every launch
 * (`supermin --build --if-newer`), into `$LIBGUESTFS_CACHEDIR | $TMPDIR | /var/tmp` + `/.guestfs-<uid>`.
 * Inside a user namespace — the appliance namespace of an unprivileged user (appliance-namespace.ts) —
 * host files appear owned by the overflow uid, so that check always rebuilds, and the build comes out
 * broken (no device nodes can be made there: the appliance dies at boot with "/dev/null: No such file or
 * directory"). So for such a user the appliance is built here, outside the namespace, with libguestfs' own
 * supermin command (when up to date, a check of about 2 s against an appliance boot of 10–30 s), and
 * marked as a fixed appliance (`README.fixed` beside kernel, initrd and root): the returned environment
 * points libguestfs at it (LIBGUESTFS_PATH), so the launch inside the namespace uses it as it is.
 * Returns no environment where the layout is not one we know (libguestfs then does as it always does).
 */
export async function applianceBuiltOutsideNamespace(extraEnv: Record<string, string>, signal: AbortSignal): Promise<Record<string, string>> {
  const env = {...process.env, ...extraEnv}
  const description = superminDir(env)
  const cpu = HOST_CPU[process.arch]
  if (description === undefined || cpu === undefined) return {}
  const cache = join(env.LIBGUESTFS_CACHEDIR || env.TMPDIR || '/var/tmp', `.guestfs-${process.geteuid?.() ?? 0}`)
  const appliance = join(cache, 'appliance.d')
  await mkdir(cache, {mode: 0o755, recursive: true})
  const args = ['--build', '--if-newer', '--lock', join(cache, 'lock'), '--copy-kernel', '-f', 'ext2', '--host-cpu', cpu, description, '-o', appliance]
  await runTool('supermin', args, {env: extraEnv, phase: 'inspect', signal})
  await writeFile(join(appliance, 'README.fixed'), 'Built by hyper2kvm outside its appliance namespace (see src/guest/supermin-appliance.ts).\n')
  return {LIBGUESTFS_PATH: appliance}
}
