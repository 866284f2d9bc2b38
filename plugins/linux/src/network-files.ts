import type {GuestSession} from '@hyper2kvm/plugin-api'

import {lines} from './guest-facts.js'

/** What a network configuration file is, which decides how it is read and rewritten. */
export type NetworkFileKind = 'netplan' | 'ifupdown' | 'networkmanager' | 'ifcfg' | 'networkd' | 'networkd-link' | 'persistent-net'

export interface NetworkFile {
  kind: NetworkFileKind
  path: string
  text: string
}

/** Guest files are untrusted: a network config larger than this is refused unread. */
export const MAX_NETWORK_FILE_BYTES = 256 * 1024
/** All network configs read together: past this, further files are refused unread (a guest stuffed to bloat memory and report). */
export const MAX_NETWORK_TOTAL_BYTES = 4 * 1024 * 1024
/** Files looked at per directory; more are refused (a directory stuffed to slow the job down). */
export const MAX_NETWORK_FILES_PER_DIR = 128

interface Source {
  kind: NetworkFileKind
  dir: string
  /** A single file in `dir`, or a test on names in it. */
  accept: string | ((name: string) => boolean)
}

const SOURCES: readonly Source[] = [
  {accept: (n) => n.endsWith('.yaml') || n.endsWith('.yml'), dir: '/etc/netplan', kind: 'netplan'},
  {accept: 'interfaces', dir: '/etc/network', kind: 'ifupdown'},
  // Debian's default `source /etc/network/interfaces.d/*` reads every file; packaging leftovers are not config.
  {accept: (n) => !/\.(dpkg-[a-z]+|ucf-[a-z]+|bak|orig|swp)$|~$/.test(n), dir: '/etc/network/interfaces.d', kind: 'ifupdown'},
  {accept: (n) => n.endsWith('.nmconnection'), dir: '/etc/NetworkManager/system-connections', kind: 'networkmanager'},
  {accept: (n) => n.startsWith('ifcfg-') && n !== 'ifcfg-lo' && !/\.(bak|orig|rpmsave|rpmnew)$|~$/.test(n), dir: '/etc/sysconfig/network-scripts', kind: 'ifcfg'},
  {accept: (n) => n.startsWith('ifcfg-') && n !== 'ifcfg-lo' && !/\.(bak|orig|rpmsave|rpmnew)$|~$/.test(n), dir: '/etc/sysconfig/network', kind: 'ifcfg'},
  {accept: (n) => n.endsWith('.network'), dir: '/etc/systemd/network', kind: 'networkd'},
  {accept: (n) => n.endsWith('.link'), dir: '/etc/systemd/network', kind: 'networkd-link'},
  {accept: '70-persistent-net.rules', dir: '/etc/udev/rules.d', kind: 'persistent-net'},
]

/** Printable ASCII (NM keyfile names have blanks), no slash, not hidden: anything else is refused and never echoed. */
const SAFE_NAME = /^[\x20-\x2d\x30-\x7e][\x20-\x2e\x30-\x7e]{0,254}$/

const yes = async (session: GuestSession, command: string, path: string) => (await session.call(command, path)).trim() === 'true'

/**
 * Read one candidate file, or say why not. Symlinks are refused, not followed (what they point at is not this
 * configuration's to change, and is not recorded); only regular files up to MAX_NETWORK_FILE_BYTES are read.
 */
async function readOne(session: GuestSession, path: string, warn: (message: string) => void, budget: {left: number}): Promise<string | undefined> {
  if (await yes(session, 'is-symlink', path)) {
    warn(`${path} is a symbolic link; refused, not followed (its network configuration is left as is).`)
    return undefined
  }
  if (!(await yes(session, 'is-file', path))) return undefined
  const size = Number((await session.call('filesize', path)).trim())
  if (!Number.isSafeInteger(size) || size > MAX_NETWORK_FILE_BYTES) {
    warn(`${path} is larger than ${MAX_NETWORK_FILE_BYTES / 1024} KiB; refused unread (its network configuration is left as is).`)
    return undefined
  }
  if (size > budget.left) {
    warn(`${path} would take the network configuration read past ${MAX_NETWORK_TOTAL_BYTES / 1024 / 1024} MiB in all; refused unread (its network configuration is left as is).`)
    return undefined
  }
  const text = (await session.readFile(path)) ?? undefined
  budget.left -= Math.max(size, text?.length ?? 0)
  return text
}

export interface NetworkFiles {
  files: NetworkFile[]
  /** Why files were refused; never quoting a refused file's bytes, a symlink's target or size, or an unprintable name. */
  refusals: string[]
}

/** One read per appliance session: inspection reads the files, fixer:network (nothing else writes them before it) reuses that read. */
const readsBySession = new WeakMap<GuestSession, Promise<NetworkFiles>>()

/**
 * Every network configuration file the guest has in the places netplan, ifupdown, NetworkManager, ifcfg,
 * systemd-networkd and udev keep them, in a stable order (by directory as listed above, then name). A
 * symlinked directory is not entered. Read once per session; call forget() after writing any of them.
 */
export function readNetworkFiles(session: GuestSession): Promise<NetworkFiles> {
  let read = readsBySession.get(session)
  if (read === undefined) {
    read = readAll(session)
    readsBySession.set(session, read)
    // A failed read is not remembered: the next caller tries again and gets the error itself.
    read.catch(() => readsBySession.delete(session))
  }
  return read
}

/** Drop the remembered read of this session's network files (they were changed). */
export function forgetNetworkFiles(session: GuestSession): void {
  readsBySession.delete(session)
}

async function readAll(session: GuestSession): Promise<NetworkFiles> {
  const refusals: string[] = []
  const warn = (message: string) => refusals.push(message)
  const files: NetworkFile[] = []
  const budget = {left: MAX_NETWORK_TOTAL_BYTES}
  const listings = new Map<string, string[]>()
  for (const source of SOURCES) {
    let names = listings.get(source.dir)
    if (names === undefined) {
      names = (await yes(session, 'is-dir', source.dir)) ? lines(await session.call('ls', source.dir)).sort() : []
      if (names.length > MAX_NETWORK_FILES_PER_DIR) {
        warn(`${source.dir} holds ${names.length} entries; only the first ${MAX_NETWORK_FILES_PER_DIR} are looked at.`)
        names = names.slice(0, MAX_NETWORK_FILES_PER_DIR)
      }
      const unsafe = names.filter((n) => !SAFE_NAME.test(n))
      if (unsafe.length > 0) warn(`${source.dir} holds ${unsafe.length} file name(s) that are not plain printable text; refused unread.`)
      names = names.filter((n) => SAFE_NAME.test(n))
      listings.set(source.dir, names)
    }
    const accept = source.accept
    for (const name of names.filter((n) => (typeof accept === 'string' ? n === accept : accept(n)))) {
      const path = `${source.dir}/${name}`
      const text = await readOne(session, path, warn, budget)
      if (text !== undefined) files.push({kind: source.kind, path, text})
    }
  }
  return {files, refusals}
}
