#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job, end to end: builds clonefs, makes a parent VMDK holding a small ext4 file
# system (qemu-img), inspects it and exports it back to raw with clonectl, and shows that
# the export holds the same file system. Everything happens in a temporary directory
# that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target clonectl >/dev/null
clonectl=$(pwd)/build/release/tools/clonectl

work=$(mktemp -d /tmp/clonefs-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "A golden disk: 256 MiB ext4 with a few files, as a monolithicSparse VMDK (qemu-img)"
mkdir -p content/etc content/home/user
echo "golden image built $(date -u +%F)" > content/etc/motd
seq 1 100000 > content/home/user/numbers.txt
head -c 8M /dev/urandom > content/home/user/random.bin
truncate -s 256M golden.raw
mkfs.ext4 -q -F -d content -L golden golden.raw
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse golden.raw golden.vmdk
ls -l golden.vmdk

say "clonectl inspect golden.vmdk"
"$clonectl" inspect golden.vmdk

say "The same disk as streamOptimized (the OVA transport form), inspected as JSON"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized golden.raw golden-stream.vmdk
"$clonectl" inspect --json golden-stream.vmdk | head -n 12

say "clonectl export golden-stream.vmdk exported.raw (sparse raw; holes skipped)"
"$clonectl" export golden-stream.vmdk exported.raw
echo "exported.raw: $(stat -c %s exported.raw) bytes, $(du -k exported.raw | cut -f1) KiB on disk"
cmp exported.raw golden.raw && echo "byte-for-byte identical to the raw image qemu-img started from"

say "The exported disk's file system (e2fsck and debugfs, no mount needed)"
e2fsck -fn exported.raw
debugfs -R 'ls -l /home/user' exported.raw 2>/dev/null
debugfs -R 'cat /etc/motd' exported.raw 2>/dev/null

say "qemu-img agrees: compare golden.vmdk with the export"
qemu-img compare -f vmdk -F raw golden.vmdk exported.raw

say "A broken parent is refused with one clear line"
head -c 1000000 golden-stream.vmdk > truncated.vmdk
"$clonectl" export truncated.vmdk out.raw || echo "(exit status $?; no out.raw left: $(ls out.raw 2>&1 | head -c 60))"
