#!/usr/bin/env bash
# Installs everything hyper2kvm needs on Debian 12 (run as root), then the npm dependencies, then builds.
# Safe to run again: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-utils: qemu-img/qemu-io (every conversion). util-linux: prlimit (limits on qemu-img info).
# libguestfs-tools + linux-image-amd64: the appliance that inspects and fixes guests (it boots the host's
# kernel). qemu-system-x86 + ovmf: the boot test (BIOS and UEFI). debootstrap: the e2e test guest.
# tar/gzip: OVA tooling and fixtures. bubblewrap: the sandbox every qemu process reading untrusted bytes runs in.
# dbus-daemon + gnome-keyring: tests only — a private session bus and a real Secret Service, so the
# keychain path of `hyper2kvm secrets` is tested against the real thing (the daemon itself needs neither).
# prometheus: only for its promtool (`promtool check metrics` on the daemon's real /metrics scrape in the
# tests; 19 MB download, 96 MB installed with the Prometheus server beside it, which is disabled below).
# jq + bc: the seed's ops one-liners and examples/ops/hyper2kvm-healthcheck (its stats.json mode), run by the tests.
PACKAGES=(qemu-utils util-linux tar gzip libguestfs-tools linux-image-amd64 qemu-system-x86 ovmf debootstrap bubblewrap dbus-daemon gnome-keyring prometheus jq bc)
# libguestfs-xfs: puts xfsprogs into the libguestfs appliance (mkfs.xfs, xfs_admin, xfs_repair): the
# debian12-uefi-lvm-xfs test guest is built with it, and libguestfs' xfs_* calls need it.
PACKAGES+=(libguestfs-xfs)
# logrotate: the daemon-logs test runs the shipped examples/systemd/hyper2kvm-daemon.logrotate against a real daemon.
PACKAGES+=(logrotate)
# libvirt-clients + libxml2-utils: tests only — virt-xml-validate (a shell script around xmllint) checks the
# domain --emit libvirt writes against libvirt's own schema, and virsh defines it on libvirt's in-process test
# driver (test:///default: no libvirtd). Converting needs neither; `virsh define` is the user's next step.
PACKAGES+=(libvirt-clients libxml2-utils)
# xfsprogs, btrfs-progs: the bare-filesystem tests make real XFS and btrfs images (mkfs.xfs -p, mkfs.btrfs --rootdir).
PACKAGES+=(xfsprogs btrfs-progs)
# postgresql: the second job-store engine (several daemons sharing one queue, `store: {url: postgres://…}`).
# The tests run their own throwaway clusters from /usr/lib/postgresql/<major>/bin (test/helpers/pg-cluster.ts:
# initdb in a temp dir, a free loopback port); the package's own cluster on 5432 is not used by them.
PACKAGES+=(postgresql)
# openssl: tests only — a throwaway CA and server certificate for the PostgreSQL store's TLS modes.
PACKAGES+=(openssl)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ] || [ "${H2K_APT_UPDATE:-0}" = 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} — run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ "${#missing[@]}" -gt 0 ]; then apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"; fi
  # The prometheus package enables its server (port 9090, the daemon's default metrics port): we want promtool only.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl > /dev/null; then systemctl disable --now prometheus.service > /dev/null 2>&1 || true; fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-fund --no-audit
fi
npm run build --silent
