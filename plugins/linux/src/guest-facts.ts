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
 * Shell functions: `initramfs_virtio IMAGE` prints yes/no/- for "the image lists a virtio_blk module";
 * `initramfs_virtio_full IMAGE` answers the same with the guest's own lister only.
 * The common case (one compressed cpio, as initramfs-tools writes it when the guest has no early
 * microcode) is listed with one decompressor and `cpio -t`: lsinitramfs (unmkinitramfs --list) first
 * probes every decompressor in turn and walks the image's header bytes with a dd fork per field, which
 * under TCG costs seconds per image. Images that start with an uncompressed cpio (early microcode,
 * dracut's early archive) or use a compressor we do not list, or where the guest lacks the
 * decompressor, go to the guest's own lsinitramfs/lsinitrd as before. `cpio -t` stops at the first
 * archive's trailer. Where that archive lacks virtio_blk and the image holds a gzip member after its start with
 * the header the append form of fixer:initramfs writes (`gzip -n -9`: a cheap scan of the compressed bytes,
 * so a source image is not decompressed twice), the decompressed stream (kept in a temporary file) is listed
 * again from each later archive's header, found after each trailer — the decompressor reads every member in a
 * row (gzip members in a row; Debian's zstd also reads a gzip member after zstd ones), so an image the append
 * form extended is listed whole. A "no"
 * is still not the last word: before a rebuilt image is called one without virtio_blk,
 * `initramfs_virtio_full` asks the guest's lister (initramfsHasVirtio with `full`). Only the
 * listed file names count: modules.order/modules.builtin inside an image name every module, so the bytes
 * are never grepped raw.
 */
export const INITRAMFS_VIRTIO_FN = `
initramfs_virtio_full() {
  if command -v lsinitramfs >/dev/null 2>&1; then
    if lsinitramfs "$1" 2>/dev/null | grep -q 'virtio_blk'; then echo yes; else echo no; fi
  elif command -v lsinitrd >/dev/null 2>&1; then
    if lsinitrd "$1" 2>/dev/null | grep -q 'virtio_blk'; then echo yes; else echo no; fi
  else echo -; fi
}
initramfs_virtio_later() {
  for o in $(grep -aob 'TRAILER!!!' "$1" 2>/dev/null | cut -d: -f1); do
    s=$(tail -c +$((o + 11)) "$1" | grep -aob '07070[12]' | head -n 1 | cut -d: -f1)
    [ -n "$s" ] || continue
    if tail -c +$((o + 11 + s)) "$1" | cpio -t --quiet 2>/dev/null | grep -q 'virtio_blk'; then echo yes; return; fi
  done
  echo no
}
initramfs_virtio() {
  d=
  case $(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \\n') in
    1f8b*) d='gzip -dc' ;;
    28b52ffd) d='zstd -qdc' ;;
    fd377a58) d='xz -dc' ;;
    02214c18) d='lz4 -dc' ;;
  esac
  if [ -n "$d" ] && command -v "\${d%% *}" >/dev/null 2>&1 && command -v cpio >/dev/null 2>&1; then
    if $d < "$1" 2>/dev/null | cpio -t --quiet 2>/dev/null | grep -q 'virtio_blk'; then echo yes; return; fi
    if LC_ALL=C grep -aobP '\\x1f\\x8b\\x08\\x00\\x00\\x00\\x00\\x00\\x02\\x03' "$1" 2>/dev/null | grep -qv '^0:' && t=$(mktemp 2>/dev/null); then
      $d < "$1" > "$t" 2>/dev/null
      initramfs_virtio_later "$t"
      rm -f "$t"
    else echo no; fi
  else initramfs_virtio_full "$1"; fi
}
`

/**
 * One shell script, run once inside the guest, that gathers what inspection needs from the guest's own
 * point of view (its PATH, its symlinks): kernels and their virtio drivers, initramfs images and whether
 * they hold virtio_blk, the initramfs tool, and which boot loader files exist. Printed as tagged lines.
 */
export const FACTS_SCRIPT = `${INITRAMFS_VIRTIO_FN}
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
  if [ -n "$i" ]; then iv=$(initramfs_virtio "$i"); fi
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

/** Shell-safe: paths come from the guest's /boot listing. */
function quote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`
}

/**
 * Whether each of these initramfs images lists virtio_blk (undefined: the guest has no way to list it),
 * checked in one run inside the guest: after a rebuild only the rebuilt images are read again, not every
 * kernel's facts. `full`: with the guest's own lister only (lsinitramfs/lsinitrd; undefined without one).
 */
export async function initramfsHasVirtio(session: GuestSession, images: string[], options: {full?: boolean} = {}): Promise<Map<string, boolean | undefined>> {
  const result = new Map<string, boolean | undefined>()
  if (images.length === 0) return result
  const fn = options.full ? 'initramfs_virtio_full' : 'initramfs_virtio'
  const script = `${INITRAMFS_VIRTIO_FN}\n${images.map((image, index) => `echo "${index} $(${fn} ${quote(image)})"`).join('\n')}\n`
  for (const line of lines(await session.sh(script))) {
    const [index, answer] = line.split(' ')
    const image = images[Number(index)]
    if (image !== undefined) result.set(image, answer === 'yes' ? true : answer === 'no' ? false : undefined)
  }
  return result
}
