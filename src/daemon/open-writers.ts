import {readdir, readFile, readlink, stat} from 'node:fs/promises'

/**
 * Which files some process on this host holds open for writing, from /proc: every process's fd links
 * (`/proc/<pid>/fd/<n>`, stat'ed through the link, so a file is matched by device and inode whatever path
 * or mount namespace the writer opened it by) and their `fdinfo` access mode. This sees local copies and
 * the user-space file servers that write on a client's behalf (smbd, NFS-Ganesha, sftp-server).
 *
 * Limits: a daemon running as root sees every process; an unprivileged daemon sees only the processes of
 * its own user (the fds of others are not readable), and a /proc mounted with `hidepid` hides others too.
 * The kernel NFS server (nfsd) writes without file descriptors, and a writer on another host (an NFS
 * client) is on no /proc of ours: both are invisible here, hence upload-then-rename.
 */

/** One walk of /proc: the fds of every visible process that point at a file, by device:inode. */
export class OpenFileTable {
  private constructor(private readonly byInode: Map<string, string[]>) {}

  /** No /proc to walk (a container without it): nobody is seen writing. */
  static readonly empty = new OpenFileTable(new Map())

  /** Walk /proc once. Processes and fds that vanish or cannot be read mid-walk are skipped. */
  static async scan(proc = '/proc'): Promise<OpenFileTable> {
    const byInode = new Map<string, string[]>()
    const pids = (await readdir(proc)).filter((name) => /^[0-9]+$/.test(name))
    await Promise.all(
      pids.map(async (pid) => {
        const fds = await readdir(`${proc}/${pid}/fd`).catch(() => [] as string[]) // gone, or another user's
        for (const fd of fds) {
          const link = `${proc}/${pid}/fd/${fd}`
          // Sockets, pipes and anon inodes have no path: skip them before the stat.
          const target = await readlink(link).catch(() => '')
          if (!target.startsWith('/')) continue
          const info = await stat(link, {bigint: true}).catch(() => undefined)
          if (!info?.isFile()) continue
          const key = `${info.dev}:${info.ino}`
          const list = byInode.get(key)
          if (list) list.push(`${pid}/${fd}`)
          else byInode.set(key, [`${pid}/${fd}`])
        }
      }),
    )
    return new OpenFileTable(byInode)
  }

  /** Pids holding the file (by device and inode) open with write access (O_WRONLY or O_RDWR). */
  async writers(dev: bigint, ino: bigint, proc = '/proc'): Promise<number[]> {
    const pids = new Set<number>()
    for (const entry of this.byInode.get(`${dev}:${ino}`) ?? []) {
      const [pid, fd] = entry.split('/') as [string, string]
      const info = await readFile(`${proc}/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '') // closed since the walk
      const flags = /^flags:\s*([0-7]+)$/m.exec(info)?.[1]
      if (flags !== undefined && (Number.parseInt(flags, 8) & 0o3) !== 0) pids.add(Number(pid))
    }
    return [...pids]
  }
}
