import {type ExecFileSyncOptions, execFileSync} from 'node:child_process'
import {copyFileSync, lstatSync, mkdirSync, readdirSync, readlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

export type BareFsType = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'btrfs'

/** Smallest sizes the host's mkfs accepts (xfsprogs 6 refuses less than 300 MiB); the files are sparse. */
const SIZE: Record<BareFsType, string> = {btrfs: '128M', ext2: '64M', ext3: '64M', ext4: '64M', xfs: '300M'}

/** The host's /bin/sh with the libraries it loads, so the appliance can run the inspector's script "inside the guest". */
function copyShell(root: string): void {
  const sh = '/bin/dash'
  const libraries = execFileSync('ldd', [sh], {encoding: 'utf8'})
    .split('\n')
    .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
    .filter((path): path is string => path !== undefined)
  for (const file of [sh, ...libraries]) {
    const target = join(root, file === sh ? '/bin/sh' : file)
    mkdirSync(dirname(target), {recursive: true})
    copyFileSync(file, target)
  }
}

/**
 * The smallest tree libguestfs inspects as a Debian guest, laid out like an old paravirtual AMI: fstab on
 * /dev/xvda1 (the Xen block device the root was), a second Xen volume and swap that are not in the image, and
 * pv-grub's /boot/grub/menu.lst (a boot loader config read by Xen, not a boot loader).
 */
export function makeOsTree(root: string): void {
  const files: Record<string, string> = {
    '/boot/grub/menu.lst': 'default 0\ntimeout 1\ntitle Debian\nroot (hd0)\nkernel /boot/vmlinuz-6.1.0-18-amd64 root=/dev/xvda1 ro console=hvc0\ninitrd /boot/initrd.img-6.1.0-18-amd64\n',
    '/etc/debian_version': '12.5\n',
    '/etc/fstab': '/dev/xvda1 / ext4 defaults 0 1\n/dev/xvdb /mnt auto defaults,nofail 0 2\n/dev/xvda3 none swap sw 0 0\n',
    '/etc/hostname': 'h2k-bare\n',
    '/etc/hosts': '127.0.0.1 localhost\n',
    '/etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n',
    '/usr/bin/.keep': '',
  }
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), {recursive: true})
    writeFileSync(join(root, path), text)
  }
  copyShell(root)
}

/** An xfs_mkfs prototype file that copies `dir` (regular files, directories, symlinks) into the new filesystem. */
function xfsProto(dir: string): string {
  const mode = (path: string) => (lstatSync(path).mode & 0o777).toString(8).padStart(3, '0')
  const walk = (at: string, indent: string): string[] =>
    readdirSync(at)
      .sort()
      .flatMap((name) => {
        const path = join(at, name)
        const info = lstatSync(path)
        if (info.isDirectory()) return [`${indent}${name} d--${mode(path)} 0 0`, ...walk(path, `${indent} `), `${indent}$`]
        if (info.isSymbolicLink()) return [`${indent}${name} l--777 0 0 ${readlinkSync(path)}`]
        return [`${indent}${name} ---${mode(path)} 0 0 ${path}`]
      })
  return ['/dev/null', '0 0', 'd--755 0 0', ...walk(dir, ' '), '$', ''].join('\n')
}

/** A bare filesystem image (no partition table) made by the host's mkfs on a sparse file, holding `tree` when given. */
export function makeBareFs(type: BareFsType, path: string, tree?: string): void {
  execFileSync('truncate', ['-s', SIZE[type], path])
  const quiet: ExecFileSyncOptions = {stdio: ['ignore', 'ignore', 'pipe']}
  if (type === 'xfs') {
    const args = ['-q', '-f']
    if (tree) {
      const proto = `${path}.proto`
      writeFileSync(proto, xfsProto(tree))
      args.push('-p', proto)
    }
    execFileSync('mkfs.xfs', [...args, path], quiet)
  } else if (type === 'btrfs') {
    execFileSync('mkfs.btrfs', ['-q', '-f', ...(tree ? ['--rootdir', tree] : []), path], quiet)
  } else {
    execFileSync(`mkfs.${type}`, ['-q', '-F', ...(tree ? ['-d', tree] : []), path], quiet)
  }
}
