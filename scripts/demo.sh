#!/usr/bin/env bash
# Creates a small VMware-style disk (streamOptimized VMDK with data in a few places), converts it with
# hyper2kvm, verifies the result against the input, and shows where it is and what qemu-img says of it.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=demo
rm -rf "$demo" && mkdir -p "$demo"
qemu-img create -q -f raw "$demo/sample.raw" 256M
qemu-io -f raw -c 'write -P 0x42 0 1M' -c 'write -P 0x24 100M 4M' -c 'write -P 0x99 255M 1M' "$demo/sample.raw" >/dev/null
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$demo/sample.raw" "$demo/sample.vmdk"
rm "$demo/sample.raw"
echo "== input: $demo/sample.vmdk (streamOptimized VMDK, as vSphere exports it)"
./bin/run.js convert "$demo/sample.vmdk" --output-dir "$demo/out" --verify --checksum
echo
echo "== qemu-img info $demo/out/sample.qcow2"
qemu-img info "$demo/out/sample.qcow2"
