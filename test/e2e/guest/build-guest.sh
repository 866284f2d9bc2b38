#!/usr/bin/env bash
# Build (or reuse) a cached "VMware-style" Debian 12 test guest for the e2e tests.
#
#   build-guest.sh <cache-dir>
#
# Output (in <cache-dir>):
#   debian12-vmware.raw      sparse raw disk: MBR, one bootable ext4 partition, GRUB (i386-pc),
#                            root=/dev/sda1 everywhere, initramfs with SATA/SCSI drivers only
#                            (no virtio_blk) -- boots on SATA/SCSI, not on virtio-blk.
#   debian12-vmware.sha256   `sha256sum` line for the raw disk (cache validity check)
#   debian12-vmware.recipe   hash of this script; a changed script forces a disk rebuild
#   debian12-vmware.stamp    size/mtime/inode of the disk when its checksum was last verified; while
#                            it matches, a cache hit skips re-hashing (H2K_GUEST_VERIFY=full forces it)
#   rootfs.tar               pristine debootstrap tree (numeric owners), reused across rebuilds
#   rootfs.tar.recipe        hash of the debootstrap recipe that produced rootfs.tar
#   .lock                    flock(1) lock, so parallel test runs build only once
#
# Requirements (Debian 12 host, root): debootstrap, libguestfs-tools (guestfish), a kernel under /boot
# readable for the supermin appliance. Disk-level work runs only inside the libguestfs appliance
# (no losetup/kpartx/device-mapper on the host).
#
# Environment knobs:
#   H2K_GUEST_MIRROR      Debian mirror (default: first .../debian URI from /etc/apt/sources.list*,
#                         else http://deb.debian.org/debian)
#   H2K_GUEST_DISK_SIZE   virtual disk size for truncate(1) (default 3G)
#   LIBGUESTFS_BACKEND    default "direct"
#   LIBGUESTFS_BACKEND_SETTINGS  default "force_tcg" (qemu aborts on /dev/kvm on our CI hosts)
set -euo pipefail
umask 022

readonly NAME=debian12-vmware
readonly SUITE=bookworm
readonly INCLUDE=linux-image-amd64,grub-pc,initramfs-tools,systemd-sysv,udev,kmod,e2fsprogs
readonly MARKER_TEXT='H2K-GUEST-MARKER debian12-vmware v1'
# Only SATA/SCSI (VMware-ish) storage drivers + ext4. Deliberately no virtio_*.
readonly INITRAMFS_MODULES=(ahci libahci ata_piix ata_generic libata scsi_mod sd_mod
  mptbase mptscsih mptspi mptsas scsi_transport_spi scsi_transport_sas vmw_pvscsi
  crc32c_generic ext4)

log() { printf '[build-guest %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ $# -ne 1 || -z ${1:-} ]]; then
  echo "usage: $0 <cache-dir>" >&2
  exit 2
fi
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot)"
for tool in debootstrap guestfish sha256sum flock tar chroot truncate; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done

mkdir -p -- "$1"
CACHE=$(cd -- "$1" && pwd -P)
readonly CACHE
# The cache path is embedded in a guestfish script in double quotes.
[[ $CACHE != *[\"\\$'\n']* ]] || die "cache dir path must not contain quotes, backslashes or newlines"
readonly RAW="$CACHE/$NAME.raw"
readonly SUM="$CACHE/$NAME.sha256"
readonly RECIPE_FILE="$CACHE/$NAME.recipe"
readonly STAMP_FILE="$CACHE/$NAME.stamp"
readonly ROOTFS_TAR="$CACHE/rootfs.tar"
readonly ROOTFS_RECIPE_FILE="$CACHE/rootfs.tar.recipe"
readonly DISK_SIZE=${H2K_GUEST_DISK_SIZE:-3G}

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

# Recipe hashes: the disk depends on this whole script; rootfs.tar only on the debootstrap inputs.
SCRIPT_HASH=$(sha256sum -- "${BASH_SOURCE[0]}" | cut -d' ' -f1)
ROOTFS_RECIPE=$(printf 'debootstrap --variant=minbase --include=%s %s (arch amd64)\n' "$INCLUDE" "$SUITE" | sha256sum | cut -d' ' -f1)
readonly SCRIPT_HASH ROOTFS_RECIPE

# size, mtime (ns), inode, device, checksum-file hash: if unchanged since the last full verification,
# the disk cannot have been rewritten in place or replaced, so the 3 GiB re-hash is skipped.
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

# Serialize concurrent builders on the same cache.
exec 9>"$CACHE/.lock"
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

# ---------------------------------------------------------------- 1. debootstrap (cached rootfs.tar)
if [[ -f $ROOTFS_TAR && -f $ROOTFS_RECIPE_FILE && $(<"$ROOTFS_RECIPE_FILE") == "$ROOTFS_RECIPE" ]]; then
  log "reusing $ROOTFS_TAR"
else
  MIRROR=$(detect_mirror)
  log "debootstrap $SUITE from $MIRROR (this takes a few minutes)"
  SECONDS=0
  mkdir -- "$WORK/debootstrap"
  debootstrap --arch=amd64 --variant=minbase --include="$INCLUDE" \
    "$SUITE" "$WORK/debootstrap" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 -- "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -f -- "$WORK/debootstrap/var/cache/apt/archives/"*.deb
  tar --numeric-owner --xattrs --acls -C "$WORK/debootstrap" -cf "$ROOTFS_TAR.tmp" .
  rm -rf -- "$WORK/debootstrap"
  mv -f -- "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
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

echo h2k-guest >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	h2k-guest
::1		localhost ip6-localhost ip6-loopback
EOF
cat >"$ROOT/etc/fstab" <<'EOF'
# VMware-style: root on the first SCSI/SATA disk, by device name
/dev/sda1 / ext4 errors=remount-ro 0 1
EOF
printf '%s\n' "$MARKER_TEXT" >"$ROOT/etc/h2k-guest-marker"
# The marker is also printed by getty right before "login:" on the serial console.
printf 'Debian GNU/Linux 12 \\n \\l\n%s\n\n' "$MARKER_TEXT" >"$ROOT/etc/issue"

cat >"$ROOT/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_LINUX_UUID=true
GRUB_DISABLE_RECOVERY=true
GRUB_DISABLE_OS_PROBER=true
EOF

mkdir -p -- "$ROOT/etc/initramfs-tools/conf.d"
sed -i -E 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
grep -qx 'MODULES=list' "$ROOT/etc/initramfs-tools/initramfs.conf" || die "could not set MODULES=list"
echo 'RESUME=none' >"$ROOT/etc/initramfs-tools/conf.d/resume"
{
  echo '# VMware-style storage only (SATA/IDE/LSI/PVSCSI) -- intentionally no virtio drivers'
  printf '%s\n' "${INITRAMFS_MODULES[@]}"
} >"$ROOT/etc/initramfs-tools/modules"

# Serial console: empty root password and an explicit getty on ttyS0 (also auto-spawned by
# systemd from console=ttyS0, the symlink makes it independent of the command line).
chroot "$ROOT" passwd -d root >/dev/null
ln -sf /lib/systemd/system/serial-getty@.service \
  "$ROOT/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
: >"$ROOT/etc/machine-id"
rm -f -- "$ROOT/var/lib/dbus/machine-id"

mount_chroot
chroot "$ROOT" update-initramfs -u -k all >"$WORK/initramfs.log" 2>&1 ||
  { cat -- "$WORK/initramfs.log" >&2; die "update-initramfs failed"; }
chroot "$ROOT" lsinitramfs "/boot/initrd.img-$KVER" >"$WORK/initrd.list"
unmount_chroot

if grep -qE '/virtio[^/]*\.ko' "$WORK/initrd.list"; then
  die "initramfs contains virtio modules: $(grep -E '/virtio[^/]*\.ko' "$WORK/initrd.list" | tr '\n' ' ')"
fi
for m in ahci sd_mod ata_piix mptspi vmw_pvscsi ext4; do
  grep -qE "/$m\.ko" "$WORK/initrd.list" || die "initramfs lacks $m"
done
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
guestfish --rw --format=raw -a "$WORK/disk.raw" >"$WORK/guestfish.log" 2>&1 <<EOF || { cat -- "$WORK/guestfish.log" >&2; die "guestfish failed"; }
echo "step launch"
time run
part-init /dev/sda mbr
part-add /dev/sda p 2048 -1
part-set-bootable /dev/sda 1 true
part-set-mbr-id /dev/sda 1 0x83
echo "step mkfs"
time mkfs ext4 /dev/sda1 label:h2k-root
mount /dev/sda1 /
echo "step tar-in"
time tar-in "$WORK/root.tar" / xattrs:true acls:true
echo "step grub-install"
time command "/usr/sbin/grub-install --target=i386-pc /dev/sda"
echo "step grub-mkconfig"
time command "/usr/sbin/grub-mkconfig -o /boot/grub/grub.cfg"
download /boot/grub/grub.cfg "$WORK/grub.cfg"
download /boot/initrd.img-$KVER "$WORK/initrd.img"
download /etc/h2k-guest-marker "$WORK/marker"
sync
umount-all
EOF
log "guestfish step done in ${SECONDS}s ($(sed -nE -e 's/^step (.*)/\1/p' -e 's/^elapsed time: ([0-9.]+) seconds/\1s,/p' "$WORK/guestfish.log" | paste -sd' ' | sed 's/,$//'))"

# ---------------------------------------------------------------- 4. verify, checksum, publish
grep -q 'root=/dev/sda1' "$WORK/grub.cfg" || die "grub.cfg lacks root=/dev/sda1"
if grep -qE 'root=UUID=' "$WORK/grub.cfg"; then die "grub.cfg uses root=UUID="; fi
grep -q 'console=ttyS0,115200' "$WORK/grub.cfg" || die "grub.cfg lacks console=ttyS0,115200"
[[ $(sha256sum -- "$WORK/initrd.img" | cut -d' ' -f1) == "$INITRD_SHA" ]] || die "initrd on disk differs from the checked one"
[[ $(<"$WORK/marker") == "$MARKER_TEXT" ]] || die "marker file mismatch"

( cd -- "$WORK" && sha256sum -- disk.raw ) | sed "s/ disk\.raw\$/ $NAME.raw/" >"$WORK/disk.sha256"
rm -f -- "$SUM" "$RECIPE_FILE" "$STAMP_FILE"
mv -f -- "$WORK/disk.raw" "$RAW"
printf '%s\n' "$SCRIPT_HASH" >"$RECIPE_FILE.tmp" && mv -f -- "$RECIPE_FILE.tmp" "$RECIPE_FILE"
mv -f -- "$WORK/disk.sha256" "$SUM"
disk_stamp >"$STAMP_FILE.tmp" && mv -f -- "$STAMP_FILE.tmp" "$STAMP_FILE"
log "built $RAW ($(du -h -- "$RAW" | cut -f1) allocated, $DISK_SIZE virtual)"
