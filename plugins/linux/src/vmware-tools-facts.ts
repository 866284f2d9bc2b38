import type {GuestSession, InspectionRisk, VmwareToolsFacts} from '@hyper2kvm/plugin-api'

import {lines} from './guest-facts.js'
import {globPaths, isDir, isTrue, readBounded} from './guest-queries.js'

/** /var/lib/dpkg/status of a large server is a few MiB; one larger than this is not read. */
export const DPKG_STATUS_MAX_BYTES = 32 * 1024 * 1024

/** VMware Tools' own installer database and uninstaller: present only after a tarball install. */
export const TARBALL_MARKERS = ['/etc/vmware-tools/locations', '/usr/bin/vmware-uninstall-tools.pl'] as const

/** The tarball's services: SysV scripts (some releases also put a unit of that name in /etc/systemd/system). */
export const TARBALL_SERVICES = ['vmware-tools', 'vmware-tools-thinprint'] as const

/** open-vm-tools' services: Debian (open-vm-tools + alias vmtoolsd, vgauth) and RPM distributions (vmtoolsd, vgauthd). */
export const OPEN_VM_TOOLS_SERVICES = ['open-vm-tools', 'vmtoolsd', 'vgauth', 'vgauthd'] as const

/** The kernel modules the tarball builds (vmw_* in-kernel drivers are the kernel's, not the tarball's). */
export const TARBALL_MODULES = new Set(['vmhgfs', 'vmxnet', 'vmxnet3', 'vmmemctl', 'vmci', 'vsock', 'vmblock', 'vmsync', 'pvscsi'])

const UNIT_DIRS = ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'] as const
const INIT_DIRS = ['/etc/init.d', '/etc/rc.d/init.d'] as const

/** Names we report or act on come from the guest: only plain ones are taken, so a report never carries its bytes. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/
/** A directory of a package cache path (dnf's are `<repo>-<hash>`): plain characters only. */
const CACHE_PART = /^[A-Za-z0-9][A-Za-z0-9._+~:@-]{0,127}$/
const CACHED_DEB = /^qemu-guest-agent_\d[A-Za-z0-9.+~%_-]*\.deb$/
const CACHED_RPM = /^qemu-guest-agent-\d[A-Za-z0-9.+~_-]*\.rpm$/
/** A dpkg guest's cache, then every cache (an RPM guest, or a dpkg guest whose status file was refused). */
const DEB_CACHES = ['/var/cache/apt/archives/*'] as const
const PACKAGE_CACHES = ['/var/cache/apt/archives/*', '/var/cache/dnf/*/packages/*', '/var/cache/yum/*/packages/*', '/var/cache/yum/*/*/*/packages/*', '/var/cache/zypp/packages/*/*/*'] as const

export interface VmwareToolsInspection {
  facts: VmwareToolsFacts
  risks: InspectionRisk[]
}

/** Installed packages of interest from dpkg's status file: a paragraph's Package and the last word of its Status. */
export function installedDebs(status: string, wanted: readonly string[]): Set<string> {
  const installed = new Set<string>()
  for (const paragraph of status.split(/\r?\n[ \t]*\r?\n/)) {
    const name = /^Package:[ \t]*(\S+)[ \t]*$/m.exec(paragraph)?.[1]
    if (!name || !wanted.includes(name)) continue
    // The whole line, then trim: a lazy capture before `[ \t]*$` is quadratic in a run of blanks (the guest's bytes).
    const state = /^Status:(.*)$/m.exec(paragraph)?.[1]?.trim().split(/\s+/)
    if (state?.at(-1) === 'installed') installed.add(name)
  }
  return installed
}

async function anyExists(session: GuestSession, paths: readonly string[]): Promise<string | undefined> {
  for (const path of paths) if (await session.exists(path)) return path
  return undefined
}

/** The service units and SysV scripts of VMware's services the guest has, as paths (each directory listed once). */
async function servicePieces(session: GuestSession): Promise<string[]> {
  const wanted = new Set<string>([...OPEN_VM_TOOLS_SERVICES, ...TARBALL_SERVICES])
  const found: string[] = []
  const seen = new Set<string>()
  for (const dir of [...UNIT_DIRS, ...INIT_DIRS]) {
    // /lib → usr/lib (merged /usr) and /etc/init.d → rc.d/init.d (RHEL) name one directory twice: list it once.
    if (!(await isDir(session, dir, true))) continue
    const real = (await session.call('realpath', dir)).trim()
    if (seen.has(real)) continue
    seen.add(real)
    const unitDir = dir.includes('systemd')
    for (const name of lines(await session.call('ls', dir))) {
      const service = unitDir ? (name.endsWith('.service') ? name.slice(0, -'.service'.length) : undefined) : name
      if (service !== undefined && wanted.has(service)) found.push(`${dir}/${name}`)
    }
  }
  return found
}

const serviceOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1).replace(/\.service$/, '')

async function tarballModules(session: GuestSession): Promise<string[]> {
  const found: string[] = []
  for (const pattern of ['/lib/modules/*/misc/*.ko*', '/lib/modules/*/updates/*.ko*', '/lib/modules/*/updates/vmware/*.ko*']) {
    for (const path of await globPaths(session, pattern)) {
      const parts = path.split('/')
      const module = parts.at(-1)!.replace(/\.ko(\.(xz|gz|zst))?$/, '')
      if (TARBALL_MODULES.has(module) && SAFE_NAME.test(parts[3] ?? '')) found.push(path)
    }
  }
  return found
}

async function cachedAgent(session: GuestSession, caches: readonly string[]): Promise<string | undefined> {
  for (const pattern of caches) {
    const dir = pattern.slice(0, -2)
    for (const path of await globPaths(session, `${dir}/qemu-guest-agent[-_]*`)) {
      const name = path.slice(path.lastIndexOf('/') + 1)
      // A plain file with a package's name: a link or an odd name is not offered as something to install.
      if ((CACHED_DEB.test(name) || CACHED_RPM.test(name)) && path.split('/').slice(1, -1).every((p) => CACHE_PART.test(p)) && (await isTrue(session, 'is-file', path))) return path
    }
  }
  return undefined
}

/**
 * Inspection of VMware Tools and qemu-guest-agent, read-only. dpkg guests: the status file, read as text
 * up to DPKG_STATUS_MAX_BYTES. Other guests (RPM and the rest), and a status file that is refused: the
 * packages' own files, never the RPM database (its readers would parse a hostile Berkeley DB/SQLite file).
 */
export async function inspectVmwareTools(session: GuestSession): Promise<VmwareToolsInspection> {
  const risks: InspectionRisk[] = []
  const found: string[] = []
  const status = await readBounded(session, '/var/lib/dpkg/status', DPKG_STATUS_MAX_BYTES)
  if (status.state === 'refused') {
    risks.push({code: 'PACKAGE_DB_UNREADABLE', message: `/var/lib/dpkg/status ${status.why}; it was not read: open-vm-tools and qemu-guest-agent were looked for by their files.`})
  }
  const debs = status.state === 'text' ? installedDebs(status.text, ['open-vm-tools', 'qemu-guest-agent']) : undefined

  // What decides the facts first (cheap); the pieces are listed only when there is something to list.
  const markers: string[] = []
  for (const marker of TARBALL_MARKERS) if (await session.exists(marker)) markers.push(marker)
  const tarball = markers.length > 0
  const vmtoolsd = debs ? false : await session.exists('/usr/bin/vmtoolsd')
  const services = tarball || vmtoolsd || debs?.has('open-vm-tools') ? await servicePieces(session) : []
  const ovtServices = services.filter((p) => (OPEN_VM_TOOLS_SERVICES as readonly string[]).includes(serviceOf(p)))
  const openVmTools = debs ? debs.has('open-vm-tools') : vmtoolsd && ovtServices.some((p) => p.endsWith('.service'))
  if (openVmTools) found.push(...(debs ? ['/var/lib/dpkg/status: open-vm-tools'] : ['/usr/bin/vmtoolsd']), ...ovtServices)
  if (tarball) found.push(...markers, ...services.filter((p) => (TARBALL_SERVICES as readonly string[]).includes(serviceOf(p))), ...(await tarballModules(session)))
  if (tarball || openVmTools) found.push(...(await globPaths(session, '/etc/modprobe.d/vmware[-_]*.conf')).filter((p) => SAFE_NAME.test(p.slice(p.lastIndexOf('/') + 1))))

  let qemuGuestAgent: VmwareToolsFacts['qemuGuestAgent'] = 'absent'
  let qemuGuestAgentPackage: string | undefined
  if (debs ? debs.has('qemu-guest-agent') : await anyExists(session, ['/usr/sbin/qemu-ga', '/usr/bin/qemu-ga'])) qemuGuestAgent = 'installed'
  else if ((qemuGuestAgentPackage = await cachedAgent(session, debs ? DEB_CACHES : PACKAGE_CACHES))) qemuGuestAgent = 'in-package-cache'
  return {facts: {found, openVmTools, qemuGuestAgent, tarball, ...(qemuGuestAgentPackage ? {qemuGuestAgentPackage} : {})}, risks}
}
