# shellcheck shell=bash
# Variant debian12-bios-dracut-btrfs: the shape RHEL-family and SUSE estates have, on a Debian 12 base.
#   MBR, BIOS GRUB (i386-pc) on /dev/sda
#   /dev/sda1  ext4   /boot
#   /dev/sda2  btrfs  subvolumes @ (/) and @home (/home): fstab says /dev/sda2 + subvol=@ / subvol=@home, the
#                     kernel command line root=/dev/sda2 rootflags=subvol=@ (grub-mkconfig adds rootflags itself)
#   /dev/sda3  swap   resume=/dev/sda3 on the kernel command line
#   initramfs by Debian's dracut package (initramfs-tools purged), hostonly="yes", the image holding VMware's
#   storage drivers and no virtio module at all
#   systemd-networkd: 10-ens160.link names the VMware NIC (MAC 00:50:56:…) ens160, 10-ens160.network runs DHCP
#   on Name=ens160; no ifupdown.
# Everything is named the VMware way, so on virtio the source finds neither its root, /boot, /home, swap nor NIC.
# Sourced by ../build-guest.sh (see its header for the recipe interface).

# dracut-core does not conflict with initramfs-tools, so debootstrap (which resolves the kernel's
# "initramfs-tools | linux-initramfs-tool" to its first alternative and cannot install the `dracut` package
# next to it) builds the cached tree with both; variant_configure_tree swaps in the `dracut` package.
VARIANT_INCLUDE=grub-pc,dracut-core,btrfs-progs,systemd
VARIANT_DISK_SIZE=3G
VARIANT_FIRMWARE=bios
VARIANT_HOSTNAME=h2k-dracut
# The VMware NIC: OUI 00:50:56 (VMware, Inc.), named ens160 as a vmxnet3 in PCI slot 160 is.
readonly VARIANT_VMWARE_MAC=00:50:56:8a:16:0a
# MBR layout in 512-byte sectors: /boot 256 MiB from sector 2048, swap 256 MiB at the end, btrfs in between.
readonly VARIANT_BOOT_END=526335
readonly VARIANT_SWAP_SECTORS=524288

variant_configure_tree() {
  # Debian's dracut package in place of initramfs-tools: the only step that needs the archive (one small deb of
  # kernel hooks; dracut-core is in the cached tree). dracut conflicts with initramfs-tools, so apt removes it.
  cp -- /etc/resolv.conf "$ROOT/etc/resolv.conf"
  chroot "$ROOT" apt-get -q -o Acquire::Retries=3 update >"$WORK/apt.log" 2>&1 ||
    { cat -- "$WORK/apt.log" >&2; die "apt-get update in the guest tree failed"; }
  # INITRD=No: dracut's kernel hook skips its generic build (minutes), the image is built below.
  chroot "$ROOT" env INITRD=No apt-get -q -y --no-install-recommends -o Dpkg::Options::=--force-confold install dracut >>"$WORK/apt.log" 2>&1 ||
    { cat -- "$WORK/apt.log" >&2; die "installing dracut in the guest tree failed"; }
  chroot "$ROOT" dpkg --purge initramfs-tools initramfs-tools-core >>"$WORK/apt.log" 2>&1 ||
    { cat -- "$WORK/apt.log" >&2; die "purging initramfs-tools failed"; }
  : >"$ROOT/etc/resolv.conf"
  chroot "$ROOT" dpkg-query -W -f='${Status}\n' dracut | grep -qx 'install ok installed' || die "dracut is not installed"
  [[ ! -e $ROOT/usr/sbin/update-initramfs && ! -e $ROOT/usr/bin/lsinitramfs ]] || die "initramfs-tools is still installed"

  cat >"$ROOT/etc/fstab" <<'FSTAB'
# VMware-style: everything by device name on the first SCSI disk
/dev/sda2  /      btrfs  defaults,subvol=@      0 0
/dev/sda1  /boot  ext4   defaults               0 2
/dev/sda2  /home  btrfs  defaults,subvol=@home  0 0
/dev/sda3  none   swap   sw                     0 0
FSTAB
  write_grub_defaults 'resume=/dev/sda3'

  mkdir -p -- "$ROOT/etc/dracut.conf.d"
  cat >"$ROOT/etc/dracut.conf.d/10-hostonly.conf" <<'CONF'
# As installed on VMware: an image with only what this machine needs.
hostonly="yes"
CONF

  mkdir -p -- "$ROOT/etc/systemd/network"
  cat >"$ROOT/etc/systemd/network/10-ens160.link" <<LINK
# The VMware vmxnet3 NIC keeps its name, found by its MAC.
[Match]
MACAddress=$VARIANT_VMWARE_MAC

[Link]
Name=ens160
LINK
  cat >"$ROOT/etc/systemd/network/10-ens160.network" <<'NETWORK'
[Match]
Name=ens160

[Network]
DHCP=yes
NETWORK
  chroot "$ROOT" systemctl enable systemd-networkd.service >"$WORK/systemctl.log" 2>&1 ||
    { cat -- "$WORK/systemctl.log" >&2; die "systemctl enable systemd-networkd failed"; }
  if [[ -e $ROOT/etc/network/interfaces ]] && grep -qE '^[[:space:]]*(iface|auto|allow-)' "$ROOT/etc/network/interfaces"; then
    die "ifupdown is configured"
  fi

  # What hostonly dracut builds on VMware cannot be built here: the build host's kernel (no /proc/modules on
  # some hosts, its own virtio disks, no /run in the chroot) is not the guest's machine, and dracut falls back to
  # a generic image with every virtio driver. So this image is exclusive instead: exactly the storage drivers a
  # VMware guest's hostonly image has (--drivers), no qemu/virtiofs/nvdimm dracut modules, every virtio module
  # omitted. Only this build's command line says so; the guest's configuration stays plain hostonly="yes", which
  # is what a rebuild inside the guest (the converter's) runs with.
  chroot "$ROOT" dracut --force --no-hostonly --add btrfs --omit "qemu qemu-net virtiofs nvdimm" \
    --drivers "${VMWARE_STORAGE_MODULES[*]} btrfs ext4" --omit-drivers 'virtio.*' \
    "/boot/initrd.img-$KVER" "$KVER" >"$WORK/initramfs.log" 2>&1 ||
    { cat -- "$WORK/initramfs.log" >&2; die "dracut failed"; }
  chroot "$ROOT" lsinitrd "/boot/initrd.img-$KVER" >"$WORK/initrd.list" 2>"$WORK/lsinitrd.log" ||
    { cat -- "$WORK/lsinitrd.log" >&2; die "lsinitrd failed"; }
  grep -q '^Arguments: .*--omit-drivers' "$WORK/initrd.list" || die "lsinitrd does not show dracut's arguments"
  require_initrd_modules btrfs ext4 sd_mod ahci ata_piix mptspi vmw_pvscsi
}

# Inside `command`/`sh` nothing translates device names, and in the appliance the guest disk is not always
# /dev/sda (seen on this builder: it was /dev/sdb, /dev/sda the appliance's own root, and
# `grub-install /dev/sda` failed with "embedding is not possible, but this is required for cross-disk install").
# So grub-install gets the disk that holds /boot/grub as grub-probe sees it, and the root= grub-mkconfig writes
# (GRUB_DISABLE_LINUX_UUID: the kernel name grub-probe sees) is put back to the guest's VMware name.
variant_guestfish() {
  local sectors swap_start
  sectors=$(($(numfmt --from=iec "$DISK_SIZE") / 512))
  swap_start=$((sectors - VARIANT_SWAP_SECTORS))
  cat <<GF
part-init /dev/sda mbr
part-add /dev/sda p 2048 $VARIANT_BOOT_END
part-add /dev/sda p $((VARIANT_BOOT_END + 1)) $((swap_start - 1))
part-add /dev/sda p $swap_start -1
part-set-bootable /dev/sda 1 true
echo "step mkfs"
time mkfs ext4 /dev/sda1 label:h2k-boot
time mkfs btrfs /dev/sda2 label:h2k-root
mkswap /dev/sda3 label:h2k-swap
mount /dev/sda2 /
btrfs-subvolume-create /@
btrfs-subvolume-create /@home
umount /
mount-options subvol=@ /dev/sda2 /
mkdir /boot
mkdir /home
mount /dev/sda1 /boot
mount-options subvol=@home /dev/sda2 /home
echo "step tar-in"
time tar-in "$WORK/root.tar" / xattrs:true acls:true
echo "step grub-install"
time sh "/usr/sbin/grub-install --target=i386-pc \$(/usr/sbin/grub-probe --target=disk /boot/grub)"
echo "step grub-mkconfig"
time sh "/usr/sbin/grub-mkconfig -o /boot/grub/grub.cfg && sed -i -E 's#root=/dev/sd[a-z]+#root=/dev/sda#' /boot/grub/grub.cfg"
download /boot/grub/grub.cfg "$WORK/grub.cfg"
download /boot/initrd.img-$KVER "$WORK/initrd.img"
download /etc/h2k-guest-marker "$WORK/marker"
download /etc/fstab "$WORK/fstab"
btrfs-subvolume-list / | cat >"$WORK/subvolumes"
GF
}

variant_verify() {
  grep -qE '^[[:space:]]*linux[[:space:]].*root=/dev/sda2 ' "$WORK/grub.cfg" || die "grub.cfg lacks root=/dev/sda2"
  grep -q 'rootflags=subvol=@ ' "$WORK/grub.cfg" || die "grub.cfg lacks rootflags=subvol=@"
  grep -q 'resume=/dev/sda3' "$WORK/grub.cfg" || die "grub.cfg lacks resume=/dev/sda3"
  if grep -qE 'root=UUID=' "$WORK/grub.cfg"; then die "grub.cfg uses root=UUID="; fi
  grep -q 'console=ttyS0,115200' "$WORK/grub.cfg" || die "grub.cfg lacks console=ttyS0,115200"
  grep -qE ' @home$' "$WORK/subvolumes" || die "no @home subvolume: $(tr '\n' ' ' <"$WORK/subvolumes")"
  grep -qE '^/dev/sda2 +/ +btrfs +defaults,subvol=@ ' "$WORK/fstab" || die "fstab root line is not the VMware one"
}
