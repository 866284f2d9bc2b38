import type {GuestSession} from '@hyper2kvm/plugin-api'

import {naturalCompare} from './transforms/natural-order.js'

/** "key: value" lines (guestfish hashes such as blkid and inspect-get-mountpoints). */
export function parseHash(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const at = line.indexOf(': ')
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 2)
  }
  return out
}

export function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
}

/** Compare kernel versions the way package managers roughly do: numeric runs as numbers. */
export const compareVersions = naturalCompare

/**
 * One shell script, run once inside the guest, that gathers what inspection needs from the guest's own
 * point of view (its PATH, its symlinks): kernels and their virtio drivers, initramfs images and whether
 * they hold virtio_blk, the initramfs tool, and which boot loader files exist. Printed as tagged lines.
 */
export const FACTS_SCRIPT = `
for k in $(ls -1 /lib/modules 2>/dev/null); do
  [ -d /lib/modules/$k/kernel ] || continue
  v=no
  if find /lib/modules/$k/kernel -name 'virtio_blk.ko*' 2>/dev/null | grep -q .; then v=module
  elif grep -qs '/virtio_blk.ko' /lib/modules/$k/modules.builtin; then v=builtin; fi
  i=
  for f in /boot/initrd.img-$k /boot/initramfs-$k.img /boot/initrd-$k /boot/initramfs-linux.img /boot/initramfs-$k; do
    if [ -f "$f" ]; then i=$f; break; fi
  done
  iv=
  if [ -n "$i" ]; then
    if command -v lsinitramfs >/dev/null 2>&1; then
      if lsinitramfs "$i" 2>/dev/null | grep -q 'virtio_blk'; then iv=yes; else iv=no; fi
    elif command -v lsinitrd >/dev/null 2>&1; then
      if lsinitrd "$i" 2>/dev/null | grep -q 'virtio_blk'; then iv=yes; else iv=no; fi
    fi
  fi
  echo "kernel $k $v \${i:--} \${iv:--}"
done
for t in update-initramfs dracut mkinitcpio mkinitrd mkinitfs update-grub grub2-mkconfig grub-mkconfig; do
  p=$(command -v $t 2>/dev/null) && echo "tool $t $p"
done
for f in /boot/grub/grub.cfg /boot/grub2/grub.cfg /boot/grub/menu.lst /boot/grub/grub.conf /boot/extlinux/extlinux.conf /extlinux.conf /etc/default/grub /etc/kernel/cmdline /boot/grub2/grubenv /boot/grub/device.map /boot/grub2/device.map /etc/crypttab /etc/initramfs-tools/conf.d/resume; do
  [ -e "$f" ] && echo "file $f"
done
for f in /boot/loader/entries/*.conf /boot/efi/EFI/*/grub.cfg /etc/default/grub.d/*.cfg; do
  [ -e "$f" ] && echo "file $f"
done
true
`

export interface GuestFacts {
  kernels: Array<{version: string; virtio: 'module' | 'builtin' | 'no'; initramfs?: string; virtioInInitramfs?: boolean}>
  tools: Record<string, string>
  files: string[]
}

export async function gatherFacts(session: GuestSession): Promise<GuestFacts> {
  const facts: GuestFacts = {files: [], kernels: [], tools: {}}
  for (const line of lines(await session.sh(FACTS_SCRIPT))) {
    const [tag, a, b, c, d] = line.split(' ')
    if (tag === 'kernel' && a) {
      facts.kernels.push({
        initramfs: c && c !== '-' ? c : undefined,
        version: a,
        virtio: b === 'module' || b === 'builtin' ? b : 'no',
        virtioInInitramfs: d === 'yes' ? true : d === 'no' ? false : undefined,
      })
    } else if (tag === 'tool' && a && b) facts.tools[a] = b
    else if (tag === 'file' && a) facts.files.push(a)
  }
  facts.kernels.sort((x, y) => compareVersions(x.version, y.version))
  return facts
}
