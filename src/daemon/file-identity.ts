import {lstat} from 'node:fs/promises'

/**
 * A dropped file's identity for its intake claim row: size, mtime in nanoseconds and the inode number where
 * the filesystem gives one (NFS file ids and CephFS inodes are the same on every host). The device number is
 * left out on purpose: it is the number of the mount on the host looking, so two hosts mounting one export
 * store would each see another identity for the same file and both win it. lstat: a symlink is its own file.
 */
export async function fileIdentity(path: string): Promise<string> {
  const info = await lstat(path, {bigint: true})
  const ino = info.ino > 0n ? `-i${info.ino}` : ''
  return `s${info.size}-m${info.mtimeNs}${ino}`
}
