# shellcheck shell=bash
# Variant debian12-vmware (the default): Debian 12 as a VMware guest installed the simple way.
#   BIOS, MBR, one bootable ext4 partition, GRUB (i386-pc), root=/dev/sda1 in fstab and on the kernel
#   command line, initramfs-tools with SATA/SCSI drivers only (no virtio_blk): boots on SATA/SCSI, not
#   on virtio-blk. No network configuration.
# Sourced by ../build-guest.sh (see its header for the recipe interface).

VARIANT_INCLUDE=grub-pc,initramfs-tools
VARIANT_DISK_SIZE=3G
VARIANT_FIRMWARE=bios
VARIANT_HOSTNAME=h2k-guest

variant_configure_tree() {
  cat >"$ROOT/etc/fstab" <<'FSTAB'
# VMware-style: root on the first SCSI/SATA disk, by device name
/dev/sda1 / ext4 errors=remount-ro 0 1
FSTAB
  write_grub_defaults ''
  initramfs_tools_vmware none ext4
  require_initrd_modules ahci sd_mod ata_piix mptspi vmw_pvscsi ext4
}

variant_guestfish() {
  cat <<GF
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
GF
}

variant_verify() {
  grep -q 'root=/dev/sda1' "$WORK/grub.cfg" || die "grub.cfg lacks root=/dev/sda1"
  if grep -qE 'root=UUID=' "$WORK/grub.cfg"; then die "grub.cfg uses root=UUID="; fi
  grep -q 'console=ttyS0,115200' "$WORK/grub.cfg" || die "grub.cfg lacks console=ttyS0,115200"
}
