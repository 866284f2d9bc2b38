#!/usr/bin/env bash
# Boot a disk under TCG and wait for a login prompt on the serial console.
#
#   boot-check.sh <disk> <format> <bus: virtio|sata> <timeout-seconds> <serial-log>
#
# Exit 0 if "login:" appears in the serial log within the timeout, 1 otherwise (timeout, qemu
# exited first, or an initramfs "ALERT!"/"Dropping to a shell"/kernel panic, which fail at once);
# 2 on a usage error. qemu's own stderr goes to <serial-log>.qemu.log. qemu is always killed. The disk is opened with -snapshot, so it
# is never modified. On failure the last 20 serial lines are printed to stderr.
set -euo pipefail

usage() {
  echo "usage: $0 <disk> <format> <bus: virtio|sata> <timeout-seconds> <serial-log>" >&2
  exit 2
}
[[ $# -eq 5 ]] || usage
DISK=$1 FORMAT=$2 BUS=$3 TIMEOUT=$4 SERIAL_LOG=$5
[[ -n $DISK && -n $SERIAL_LOG ]] || usage
[[ $FORMAT =~ ^[a-z0-9_]+$ ]] || { echo "boot-check: bad format: $FORMAT" >&2; usage; }
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || { echo "boot-check: bad timeout: $TIMEOUT" >&2; usage; }
[[ -e $DISK ]] || { echo "boot-check: no such disk: $DISK" >&2; exit 2; }

# QEMU option values: a literal comma is written as ",,".
qopt() { printf '%s' "${1//,/,,}"; }

case $BUS in
  virtio) disk_dev=(-device virtio-blk-pci,drive=d0) ;;
  sata) disk_dev=(-device ahci,id=ahci -device ide-hd,drive=d0,bus=ahci.0) ;;
  *) echo "boot-check: bad bus: $BUS" >&2; usage ;;
esac

: >"$SERIAL_LOG"
qemu_args=(
  -accel tcg -m 1024 -smp 2
  -nographic -monitor none -no-reboot -nic none
  -snapshot
  -drive "file=$(qopt "$DISK"),format=$FORMAT,if=none,id=d0"
  "${disk_dev[@]}"
  -chardev "file,id=s0,path=$(qopt "$SERIAL_LOG")"
  -serial chardev:s0
)

QEMU_PID=
stop_qemu() {
  [[ -n $QEMU_PID ]] || return 0
  if kill -0 "$QEMU_PID" 2>/dev/null; then
    kill -TERM "$QEMU_PID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$QEMU_PID" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "$QEMU_PID" 2>/dev/null || true
  fi
  wait "$QEMU_PID" 2>/dev/null || true
  QEMU_PID=
}
trap stop_qemu EXIT
trap 'exit 1' INT TERM

fail() {
  echo "boot-check: FAIL ($BUS, $FORMAT): $*" >&2
  echo "---- last 20 serial lines ($SERIAL_LOG) ----" >&2
  tail -n 20 -- "$SERIAL_LOG" | tr -d '\r' >&2 || true
  echo "----" >&2
  exit 1
}

qemu-system-x86_64 "${qemu_args[@]}" </dev/null >"$SERIAL_LOG.qemu.log" 2>&1 &
QEMU_PID=$!

start=$SECONDS
while :; do
  if grep -q 'login:' -- "$SERIAL_LOG" 2>/dev/null; then
    echo "boot-check: OK ($BUS, $FORMAT): login prompt after $((SECONDS - start))s" >&2
    exit 0
  fi
  # Fail fast on unrecoverable states instead of waiting for the timeout.
  if grep -qE 'ALERT! |Kernel panic|Dropping to a shell' -- "$SERIAL_LOG" 2>/dev/null; then
    sleep 1 # let the console flush the rest of the message
    fail "boot failed after $((SECONDS - start))s: $(grep -aE -m1 'ALERT! |Kernel panic' -- "$SERIAL_LOG" | tr -d '\r')"
  fi
  if ! kill -0 "$QEMU_PID" 2>/dev/null; then
    rc=0
    wait "$QEMU_PID" || rc=$?
    QEMU_PID=
    grep -q 'login:' -- "$SERIAL_LOG" 2>/dev/null && exit 0
    [[ -s $SERIAL_LOG.qemu.log ]] && sed 's/^/qemu: /' -- "$SERIAL_LOG.qemu.log" >&2
    fail "qemu exited (status $rc) after $((SECONDS - start))s without a login prompt"
  fi
  if ((SECONDS - start >= TIMEOUT)); then
    fail "no login prompt within ${TIMEOUT}s"
  fi
  sleep 1
done
