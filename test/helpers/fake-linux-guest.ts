import {execFileSync} from 'node:child_process'
import {chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

export const FAKE_KERNEL = '6.1.0-h2k-amd64'
/** The host tools the fixers' scripts run inside the guest (FACTS_SCRIPT: sh, ls, find, grep). */
const GUEST_TOOLS = ['/bin/sh', '/bin/ls', '/usr/bin/find', '/bin/grep']

export interface FakeGuestOptions {
  /** Extra guest files: path → text. */
  files?: Record<string, string>
}

/** A host binary and every library ldd names for it, copied to the same paths under `root`. */
function copyWithLibraries(root: string, binary: string): void {
  const place = (from: string, to: string) => {
    mkdirSync(dirname(join(root, to)), {recursive: true})
    copyFileSync(from, join(root, to))
    chmodSync(join(root, to), 0o755)
  }
  place(binary, binary)
  for (const line of execFileSync('ldd', [binary], {encoding: 'utf8'}).split('\n')) {
    const path = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1]
    if (path) place(path, path)
  }
}

/**
 * A tiny Linux guest the way VMware leaves one, built in a second without an appliance: one MBR partition
 * holding an ext4 made from a directory tree (`mkfs.ext4 -d`) with Debian 12's os-release, an fstab and a GRUB
 * config that name `/dev/sda1`, a kernel with a virtio_blk module and an initramfs image, initramfs-tools'
 * `update-initramfs` (a script that appends to the image: the rebuild a real guest does, in miniature) and
 * the host's own sh/ls/find/grep with their libraries, so the fixers' scripts run inside it. libguestfs
 * inspects it as Debian 12 and the stock fixers change it for real.
 */
export function makeFakeLinuxGuest(disk: string, options: FakeGuestOptions = {}): void {
  const root = `${disk}.tree`
  rmSync(root, {force: true, recursive: true})
  const files: Record<string, string> = {
    '/boot/grub/grub.cfg': `set default=0\nset timeout=1\nmenuentry 'Debian GNU/Linux' {\n\tlinux /boot/vmlinuz-${FAKE_KERNEL} root=/dev/sda1 ro console=ttyS0\n\tinitrd /boot/initrd.img-${FAKE_KERNEL}\n}\n`,
    [`/boot/initrd.img-${FAKE_KERNEL}`]: 'initramfs image (fake)\n'.repeat(64),
    [`/boot/vmlinuz-${FAKE_KERNEL}`]: 'kernel image (fake)\n',
    '/etc/fstab': '# /etc/fstab: static file system information.\n/dev/sda1\t/\text4\terrors=remount-ro\t0\t1\nproc\t/proc\tproc\tdefaults\t0\t0\n',
    '/etc/hostname': 'h2k-fake\n',
    '/etc/initramfs-tools/modules': '# List of modules that you want to include in your initramfs.\n# They will be loaded at boot time in the order below.\n',
    '/etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
    [`/lib/modules/${FAKE_KERNEL}/kernel/drivers/block/virtio_blk.ko`]: '',
    '/usr/sbin/update-initramfs': '#!/bin/sh\n# update-initramfs -u -k VERSION: append, so the image grows as a real rebuild would change it\nprintf "rebuilt with virtio\\n" >> "/boot/initrd.img-$3"\n',
    ...options.files,
  }
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), {recursive: true})
    writeFileSync(join(root, path), text)
  }
  chmodSync(join(root, '/usr/sbin/update-initramfs'), 0o755)
  for (const dir of ['/dev', '/proc', '/sys', '/tmp', '/root']) mkdirSync(join(root, dir), {recursive: true})
  for (const tool of GUEST_TOOLS) copyWithLibraries(root, tool)

  // One partition from 1 MiB to the end of a 48 MiB disk; its filesystem is made from the tree, then placed.
  const sizeMiB = 48
  execFileSync('truncate', ['-s', `${sizeMiB}M`, disk])
  execFileSync('sfdisk', ['--quiet', disk], {input: 'label: dos\nstart=2048, type=83\n', stdio: 'pipe'})
  const partition = `${disk}.part1`
  execFileSync('truncate', ['-s', `${sizeMiB - 1}M`, partition])
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', root, partition])
  execFileSync('dd', [`if=${partition}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc,fsync', 'status=none'])
  rmSync(partition, {force: true})
  rmSync(root, {force: true, recursive: true})
}
