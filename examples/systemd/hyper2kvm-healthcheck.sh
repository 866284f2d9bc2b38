#!/bin/sh
# Exit 0 when the daemon answers on its control socket and is RUNNING, PAUSED or DRAINING; 1 otherwise.
# Usage: hyper2kvm-healthcheck.sh [/etc/hyper2kvm/daemon.yaml]
set -eu
config="${1:-/etc/hyper2kvm/daemon.yaml}"
if ! out="$(hyper2kvm ctl status --json --config "$config" 2>/dev/null)"; then
  echo "hyper2kvm daemon: not answering ($(printf '%s' "$out" | tr -d '\n' | cut -c1-200))" >&2
  exit 1
fi
state="$(printf '%s' "$out" | sed -n 's/.*"state": *"\([A-Z]*\)".*/\1/p' | head -n1)"
case "$state" in
  RUNNING|PAUSED|DRAINING) echo "hyper2kvm daemon: $state"; exit 0 ;;
  *) echo "hyper2kvm daemon: unexpected state '$state'" >&2; exit 1 ;;
esac
