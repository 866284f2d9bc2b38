#!/usr/bin/env bash
# Build (or reuse) a cached "VMware-style" test guest for the e2e tests, one of several variants.
#
#   build-guest.sh <cache-dir> [variant]        (variant defaults to debian12-vmware)
#
# A variant is a recipe file test/e2e/guest/variants/<variant>.sh, sourced by this script. It defines:
#   VARIANT_INCLUDE         extra debootstrap packages (comma list: boot loader, initramfs tool, fs tools...)
#   VARIANT_DISK_SIZE       virtual disk size for truncate(1), e.g. 3G
#   VARIANT_FIRMWARE        bios | efi (informational; the tests read it from their own variant table)
#   VARIANT_HOSTNAME        optional, default h2k-guest (every guest: h2k-<short>)
#   variant_configure_tree  runs on the host with $ROOT = the unpacked tree and the chroot mounts up
#                           (proc, sys, /dev bind): fstab, grub defaults, initramfs tool config + rebuild,
#                           NIC config. It must leave the initramfs' file list in "$WORK/initrd.list"
#                           (this script refuses any virtio module in it) and may use the helpers below.
#   variant_guestfish       prints the guestfish commands between "run" and "umount-all": partition,
#                           mkfs, mount, tar-in "$WORK/root.tar", boot loader install, grub-mkconfig, and
#                           downloads: /boot/initrd.img-$KVER -> "$WORK/initrd.img", /etc/h2k-guest-marker
#                           -> "$WORK/marker" (both checked here) plus whatever variant_verify checks.
#   variant_verify          checks the built result (files in $WORK); die on any surprise.
# Common to every guest (done here): hostname, /etc/hosts, marker file /etc/h2k-guest-marker, /etc/issue
# (the marker and \4, the IPv4 address, printed by getty before "login:"), serial getty on ttyS0, empty
# root password, empty machine-id.
#
# Output (in <cache-dir>, for variant <name>):
#   <name>.raw      sparse raw disk, VMware-style (device names, no virtio in the initramfs)
#   <name>.sha256   `sha256sum` line for the raw disk (cache validity check)
#   <name>.recipe   hash of this script + the variant file; a changed recipe forces a disk rebuild
#   <name>.stamp    size/mtime/inode of the disk when its checksum was last verified; while
#                   it matches, a cache hit skips re-hashing (H2K_GUEST_VERIFY=full forces it)
#   rootfs-<key>.tar (+ .recipe)  pristine debootstrap tree (numeric owners), keyed by the full package
#                   set, shared by variants with the same set and reused across rebuilds (a rootfs.tar
#                   from before variants existed is adopted by a hard link when its recipe matches)
#   .<name>.lock    flock(1) lock, so parallel test runs build a variant only once
#
# Requirements (Debian 12 host, root): debootstrap, libguestfs-tools (guestfish), libguestfs-xfs (XFS
# variants), a kernel under /boot
# readable for the supermin appliance. Disk-level work runs only inside the libguestfs appliance
# (no losetup/kpartx/device-mapper on the host).
#
# Environment knobs:
#   H2K_GUEST_MIRROR      Debian mirror (default: first .../debian URI from /etc/apt/sources.list*,
#                         else http://deb.debian.org/debian)
#   H2K_GUEST_DISK_SIZE   overrides VARIANT_DISK_SIZE
#   LIBGUESTFS_BACKEND    default "direct"
#   LIBGUESTFS_BACKEND_SETTINGS  default "force_tcg" (qemu aborts on /dev/kvm on our CI hosts)
set -euo pipefail
umask 022

readonly SUITE=bookworm
readonly HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)

log() { printf '[build-guest %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ $# -lt 1 || $# -gt 2 || -z ${1:-} ]]; then
  echo "usage: $0 <cache-dir> [variant]" >&2
  exit 2
fi
NAME=${2:-debian12-vmware}
[[ $NAME =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "bad variant name: $NAME"
readonly NAME
readonly VARIANT_FILE="$HERE/variants/$NAME.sh"
[[ -f $VARIANT_FILE ]] || die "no such variant: $NAME (no $VARIANT_FILE)"
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot)"
for tool in debootstrap guestfish sha256sum flock tar chroot truncate; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done

VARIANT_HOSTNAME=h2k-guest
# shellcheck source=/dev/null
source "$VARIANT_FILE"
for v in VARIANT_INCLUDE VARIANT_DISK_SIZE VARIANT_FIRMWARE; do
  [[ -n ${!v:-} ]] || die "$VARIANT_FILE does not set $v"
done
for f in variant_configure_tree variant_guestfish variant_verify; do
  declare -F "$f" >/dev/null || die "$VARIANT_FILE does not define $f"
done
[[ $VARIANT_FIRMWARE == bios || $VARIANT_FIRMWARE == efi ]] || die "VARIANT_FIRMWARE must be bios or efi"
readonly MARKER_TEXT="H2K-GUEST-MARKER $NAME v1"
# The kernel, then the variant's boot loader / initramfs tool / fs tools, then the base system.
readonly INCLUDE="linux-image-amd64,$VARIANT_INCLUDE,systemd-sysv,udev,kmod,e2fsprogs"

mkdir -p -- "$1"
CACHE=$(cd -- "$1" && pwd -P)
readonly CACHE
# The cache path is embedded in a guestfish script in double quotes.
[[ $CACHE != *[\"\\$'\n']* ]] || die "cache dir path must not contain quotes, backslashes or newlines"
readonly RAW="$CACHE/$NAME.raw"
readonly SUM="$CACHE/$NAME.sha256"
readonly RECIPE_FILE="$CACHE/$NAME.recipe"
readonly STAMP_FILE="$CACHE/$NAME.stamp"
readonly DISK_SIZE=${H2K_GUEST_DISK_SIZE:-$VARIANT_DISK_SIZE}

export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

detect_mirror() {
  if [[ -n ${H2K_GUEST_MIRROR:-} ]]; then
    printf '%s\n' "$H2K_GUEST_MIRROR"
    return
  fi
  local files=() f uri
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  if ((${#files[@]})); then
    # one-line "deb URI suite ..." and deb822 "URIs: URI" forms; the main archive ends in /debian
    uri=$(sed -nE -e 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?(https?:\/\/[^[:space:]]+\/debian)\/?[[:space:]].*/\2/p' \
      -e 's/^[[:space:]]*URIs:[[:space:]]*(https?:\/\/[^[:space:]]+\/debian)\/?[[:space:]]*$/\1/p' \
      "${files[@]}" | head -n1)
    if [[ -n $uri ]]; then
      printf '%s\n' "$uri"
      return
    fi
  fi
  printf '%s\n' http://deb.debian.org/debian
}

# Recipe hashes: the disk depends on this script and the variant file; the rootfs tar only on the
# debootstrap inputs (so variants with the same package set share it).
SCRIPT_HASH=$(cat -- "${BASH_SOURCE[0]}" "$VARIANT_FILE" | sha256sum | cut -d' ' -f1)
ROOTFS_RECIPE=$(printf 'debootstrap --variant=minbase --include=%s %s (arch amd64)\n' "$INCLUDE" "$SUITE" | sha256sum | cut -d' ' -f1)
readonly SCRIPT_HASH ROOTFS_RECIPE
readonly ROOTFS_TAR="$CACHE/rootfs-${ROOTFS_RECIPE:0:16}.tar"
readonly ROOTFS_RECIPE_FILE="$ROOTFS_TAR.recipe"

# size, mtime (ns), inode, device, checksum-file hash: if unchanged since the last full verification,
# the disk cannot have been rewritten in place or replaced, so the multi-GiB re-hash is skipped.
disk_stamp() { printf '%s %s\n' "$(stat -c '%s %.9Y %i %d' -- "$RAW")" "$(sha256sum <"$SUM" | cut -d' ' -f1)"; }

cache_hit() {
  [[ -f $RAW && -f $SUM && -f $RECIPE_FILE ]] || return 1
  [[ $(<"$RECIPE_FILE") == "$SCRIPT_HASH" ]] || { log "recipe changed; rebuilding disk"; return 1; }
  if [[ ${H2K_GUEST_VERIFY:-quick} != full && -f $STAMP_FILE && $(<"$STAMP_FILE") == "$(disk_stamp)" ]]; then
    return 0
  fi
  log "verifying $NAME.sha256"
  (cd -- "$CACHE" && sha256sum --status --strict -c -- "$NAME.sha256") || { log "checksum mismatch; rebuilding disk"; return 1; }
  disk_stamp >"$STAMP_FILE.tmp" && mv -f -- "$STAMP_FILE.tmp" "$STAMP_FILE"
}

# Serialize concurrent builders of the same variant on the same cache.
exec 9>"$CACHE/.$NAME.lock"
flock 9

if cache_hit; then
  log "cache hit: $RAW"
  exit 0
fi

WORK=$(mktemp -d "$CACHE/.build.XXXXXX")
readonly WORK
readonly ROOT="$WORK/root"
MOUNTS=()

unmount_chroot() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -l -- "${MOUNTS[i]}" 2>/dev/null || log "warning: could not unmount ${MOUNTS[i]}"
  done
  MOUNTS=()
}
cleanup() {
  local rc=$?
  unmount_chroot
  # Never rm -rf through a live bind mount of the host's /dev, /proc or /sys.
  if grep -qF -- " $WORK/" /proc/self/mounts; then
    log "warning: mounts remain under $WORK; leaving it in place"
  else
    rm -rf -- "$WORK"
  fi
  ((rc == 0)) || log "build failed (exit $rc); cache left untouched"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# proc, sys and a non-recursive bind of /dev are all update-initramfs needs. Nothing is mounted
# *under* the /dev bind (with shared propagation it would show up on the host's /dev as well).
mount_chroot() {
  mount -t proc proc "$ROOT/proc"
  MOUNTS+=("$ROOT/proc")
  mount -t sysfs sysfs "$ROOT/sys"
  MOUNTS+=("$ROOT/sys")
  mount --bind /dev "$ROOT/dev"
  MOUNTS+=("$ROOT/dev")
}

# ---------------------------------------------------------------- helpers for variant recipes
# VMware-style storage drivers (SATA/IDE/LSI/PVSCSI); deliberately no virtio_*.
readonly VMWARE_STORAGE_MODULES=(ahci libahci ata_piix ata_generic libata scsi_mod sd_mod
  mptbase mptscsih mptspi mptsas scsi_transport_spi scsi_transport_sas vmw_pvscsi crc32c_generic)

# /etc/default/grub for a serial console, device names (no UUID) and the given extra command line.
write_grub_defaults() {
  cat >"$ROOT/etc/default/grub" <<EOF
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200${1:+ $1}"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_LINUX_UUID=true
GRUB_DISABLE_RECOVERY=true
GRUB_DISABLE_OS_PROBER=true
EOF
}

# initramfs-tools with MODULES=list: only the VMware storage drivers and the given extra modules, then
# rebuild and list the image into $WORK/initrd.list. $1: the resume device (or "none").
initramfs_tools_vmware() {
  local resume=$1
  shift
  mkdir -p -- "$ROOT/etc/initramfs-tools/conf.d"
  sed -i -E 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
  grep -qx 'MODULES=list' "$ROOT/etc/initramfs-tools/initramfs.conf" || die "could not set MODULES=list"
  echo "RESUME=$resume" >"$ROOT/etc/initramfs-tools/conf.d/resume"
  {
    echo '# VMware-style storage only (SATA/IDE/LSI/PVSCSI) -- intentionally no virtio drivers'
    printf '%s\n' "${VMWARE_STORAGE_MODULES[@]}" "$@"
  } >"$ROOT/etc/initramfs-tools/modules"
  chroot "$ROOT" update-initramfs -u -k all >"$WORK/initramfs.log" 2>&1 ||
    { cat -- "$WORK/initramfs.log" >&2; die "update-initramfs failed"; }
  chroot "$ROOT" lsinitramfs "/boot/initrd.img-$KVER" >"$WORK/initrd.list"
}

# die unless every named module is in $WORK/initrd.list
require_initrd_modules() {
  local m
  for m in "$@"; do
    grep -qE "/$m\.ko" "$WORK/initrd.list" || die "initramfs lacks $m"
  done
}

# ---------------------------------------------------------------- 1. debootstrap (cached rootfs tar)
# A rootfs.tar from before variants existed: adopt it (hard link, no copy) when it has this package set.
if [[ ! -f $ROOTFS_TAR && -f $CACHE/rootfs.tar && -f $CACHE/rootfs.tar.recipe && $(<"$CACHE/rootfs.tar.recipe") == "$ROOTFS_RECIPE" ]]; then
  ln -f -- "$CACHE/rootfs.tar" "$ROOTFS_TAR"
  printf '%s\n' "$ROOTFS_RECIPE" >"$ROOTFS_RECIPE_FILE"
fi
if [[ -f $ROOTFS_TAR && -f $ROOTFS_RECIPE_FILE && $(<"$ROOTFS_RECIPE_FILE") == "$ROOTFS_RECIPE" ]]; then
  log "reusing $ROOTFS_TAR"
else
  MIRROR=$(detect_mirror)
  log "debootstrap $SUITE from $MIRROR with $INCLUDE (this takes a few minutes)"
  SECONDS=0
  mkdir -- "$WORK/debootstrap"
  debootstrap --arch=amd64 --variant=minbase --include="$INCLUDE" \
    "$SUITE" "$WORK/debootstrap" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 -- "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -f -- "$WORK/debootstrap/var/cache/apt/archives/"*.deb
  tar --numeric-owner --xattrs --acls -C "$WORK/debootstrap" -cf "$WORK/rootfs.tar" .
  rm -rf -- "$WORK/debootstrap"
  rm -f -- "$ROOTFS_RECIPE_FILE"
  mv -f -- "$WORK/rootfs.tar" "$ROOTFS_TAR"
  printf '%s\n' "$ROOTFS_RECIPE" >"$ROOTFS_RECIPE_FILE"
  log "debootstrap done in ${SECONDS}s ($(du -h -- "$ROOTFS_TAR" | cut -f1))"
fi

# ---------------------------------------------------------------- 2. configure the tree (host chroot)
SECONDS=0
mkdir -- "$ROOT"
tar --numeric-owner --xattrs --acls -C "$ROOT" -xpf "$ROOTFS_TAR"

mapfile -t KVERS < <(find "$ROOT/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)
((${#KVERS[@]} == 1)) || die "expected exactly one kernel in the tree, found: ${KVERS[*]:-none}"
readonly KVER=${KVERS[0]}

echo "$VARIANT_HOSTNAME" >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$VARIANT_HOSTNAME
::1		localhost ip6-localhost ip6-loopback
EOF
printf '%s\n' "$MARKER_TEXT" >"$ROOT/etc/h2k-guest-marker"
# The marker and the IPv4 address (\4) are printed by getty right before "login:" on the serial console.
printf 'Debian GNU/Linux 12 \\n \\l\n%s\nIPv4: \\4\n\n' "$MARKER_TEXT" >"$ROOT/etc/issue"

# Serial console: empty root password and an explicit getty on ttyS0 (also auto-spawned by
# systemd from console=ttyS0, the symlink makes it independent of the command line).
chroot "$ROOT" passwd -d root >/dev/null
ln -sf /lib/systemd/system/serial-getty@.service \
  "$ROOT/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
: >"$ROOT/etc/machine-id"
rm -f -- "$ROOT/var/lib/dbus/machine-id"

mount_chroot
variant_configure_tree
unmount_chroot

[[ -s $WORK/initrd.list ]] || die "variant_configure_tree left no $WORK/initrd.list"
if grep -qE '/virtio[^/]*\.ko' "$WORK/initrd.list"; then
  die "initramfs contains virtio modules: $(grep -E '/virtio[^/]*\.ko' "$WORK/initrd.list" | tr '\n' ' ')"
fi
log "initramfs: $(grep -c '\.ko' "$WORK/initrd.list") modules, no virtio"

# Keep it small.
rm -rf -- "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/locale/* "$ROOT"/var/log/*.log \
  "$ROOT"/var/cache/debconf/*-old "$ROOT"/tmp/* "$ROOT"/root/.bash_history
mkdir -p -- "$ROOT/var/lib/apt/lists/partial"

INITRD_SHA=$(sha256sum -- "$ROOT/boot/initrd.img-$KVER" | cut -d' ' -f1)
tar --numeric-owner --xattrs --acls -C "$ROOT" -cf "$WORK/root.tar" .
TREE_SIZE=$(du -sh -- "$ROOT" | cut -f1)
rm -rf -- "$ROOT"
log "tree configured in ${SECONDS}s (kernel $KVER, tree $TREE_SIZE)"

# ---------------------------------------------------------------- 3. disk (one guestfish appliance run)
SECONDS=0
truncate -s "$DISK_SIZE" "$WORK/disk.raw"
{
  echo 'echo "step launch"'
  echo 'time run'
  variant_guestfish
  echo 'sync'
  echo 'umount-all'
} >"$WORK/guestfish.script"
guestfish --rw --format=raw -a "$WORK/disk.raw" -f "$WORK/guestfish.script" >"$WORK/guestfish.log" 2>&1 ||
  { cat -- "$WORK/guestfish.log" >&2; die "guestfish failed"; }
log "guestfish step done in ${SECONDS}s ($(sed -nE -e 's/^step (.*)/\1/p' -e 's/^elapsed time: ([0-9.]+) seconds/\1s,/p' "$WORK/guestfish.log" | paste -sd' ' | sed 's/,$//'))"

# ---------------------------------------------------------------- 4. verify, checksum, publish
[[ $(sha256sum -- "$WORK/initrd.img" | cut -d' ' -f1) == "$INITRD_SHA" ]] || die "initrd on disk differs from the checked one"
[[ $(<"$WORK/marker") == "$MARKER_TEXT" ]] || die "marker file mismatch"
variant_verify

( cd -- "$WORK" && sha256sum -- disk.raw ) | sed "s/ disk\.raw\$/ $NAME.raw/" >"$WORK/disk.sha256"
rm -f -- "$SUM" "$RECIPE_FILE" "$STAMP_FILE"
mv -f -- "$WORK/disk.raw" "$RAW"
printf '%s\n' "$SCRIPT_HASH" >"$RECIPE_FILE.tmp" && mv -f -- "$RECIPE_FILE.tmp" "$RECIPE_FILE"
mv -f -- "$WORK/disk.sha256" "$SUM"
disk_stamp >"$STAMP_FILE.tmp" && mv -f -- "$STAMP_FILE.tmp" "$STAMP_FILE"
log "built $RAW ($(du -h -- "$RAW" | cut -f1) allocated, $DISK_SIZE virtual)"
