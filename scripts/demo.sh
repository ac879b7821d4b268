#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job, end to end: builds clonefs, makes a golden VMDK holding an ext4 file
# system (qemu-img), makes 5 linked clones of it in milliseconds, mounts them with
# clonefs, writes different files into each clone's disk (losetup + ext4), and shows what
# each clone sees and the space each uses; the golden disk never changes. Then it takes a
# snapshot point of one clone, makes a linked clone of that snapshot point (a clone of a
# clone) and a full clone (independent monolithicSparse VMDKs), and shows that deleting
# a snapshot point a clone depends on is refused. Everything
# happens in a temporary directory; every mount, loop device and daemon is cleaned up at
# the end, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target clonectl clonefs >/dev/null
clonectl=$(pwd)/build/release/tools/clonectl
clonefs=$(pwd)/build/release/fs/clonefs

work=$(mktemp -d /tmp/clonefs-demo-XXXXXX)
clones=(web1 web2 db1 db2 build)
cleanup() {
  set +e
  for c in "${clones[@]}"; do
    mountpoint -q "$work/ext4-$c" 2>/dev/null && umount "$work/ext4-$c"
    [ -f "$work/loop-$c" ] && losetup -d "$(cat "$work/loop-$c")" 2>/dev/null
    if mountpoint -q "$work/mnt/$c" 2>/dev/null; then
      pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$work/$c/.clonefs/lock.owner" 2>/dev/null)
      fusermount3 -u "$work/mnt/$c"
      # The daemon flushes and exits after the unmount; wait for it.
      while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "A golden disk: 1 GiB ext4 with a few files, as a monolithicSparse VMDK (qemu-img)"
mkdir -p content/etc content/home/user
echo "golden image built $(date -u +%F)" > content/etc/motd
seq 1 100000 > content/home/user/numbers.txt
head -c 8M /dev/urandom > content/home/user/random.bin
truncate -s 1G golden.raw
mkfs.ext4 -q -F -d content -L golden golden.raw
mkdir golden
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse golden.raw golden/base.vmdk
rm golden.raw
"$clonectl" inspect golden/base.vmdk | head -n 6
golden_sha=$(sha256sum golden/base.vmdk | cut -d' ' -f1)

say "5 linked clones: no data copied, whatever the disk size"
for c in "${clones[@]}"; do "$clonectl" clone golden/base.vmdk "$c" --linked; done
ls -l golden/base.vmdk   # read-only now: the clones depend on it

say "Mount each clone: a directory holding base.vmdk and base-flat.vmdk (the whole disk)"
mkdir -p mnt
for c in "${clones[@]}"; do
  mkdir -p "mnt/$c"
  start=$(date +%s%N)
  "$clonefs" "$c" "mnt/$c"
  echo "clonefs $c mnt/$c: mounted in $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
ls -l mnt/web1

say "qemu-img info mnt/web1/base.vmdk"
qemu-img info mnt/web1/base.vmdk

say "Write different files into each clone's file system (losetup + ext4 on base-flat.vmdk)"
for c in "${clones[@]}"; do
  loop=$(losetup --find --show "mnt/$c/base-flat.vmdk")
  echo "$loop" > "loop-$c"
  mkdir -p "ext4-$c"
  mount "$loop" "ext4-$c"
  echo "I am $c" > "ext4-$c/etc/hostname"
  head -c $(( (RANDOM % 8 + 1) * 1024 * 1024 )) /dev/urandom > "ext4-$c/home/user/$c-data.bin"
  umount "ext4-$c"
  losetup -d "$loop"
  rm "loop-$c"
done

say "What each clone sees (debugfs reads the presented disk; no mount needed)"
for c in "${clones[@]}"; do
  printf '%-6s /etc/hostname: %-12s /home/user: %s\n' "$c" \
    "$(debugfs -R 'cat /etc/hostname' "mnt/$c/base-flat.vmdk" 2>/dev/null)" \
    "$(debugfs -R 'ls -p /home/user' "mnt/$c/base-flat.vmdk" 2>/dev/null |
       awk -F/ '$6 != "." && $6 != ".." && $6 != "" {printf "%s ", $6}')"
done
echo
e2fsck -fn mnt/db1/base-flat.vmdk

say "Disk space: each clone holds only what it wrote"
du -sh golden/base.vmdk "${clones[@]}"
"$clonectl" info web1

say "The golden disk never changed"
[ "$(sha256sum golden/base.vmdk | cut -d' ' -f1)" = "$golden_sha" ] && echo "golden/base.vmdk: SHA-256 unchanged"
qemu-img compare -q golden/base.vmdk mnt/web1/base.vmdk ||
  echo "mnt/web1/base.vmdk differs from it only by web1's own writes (qemu-img compare)"

say "A second mount of a running clone is refused with one clear line"
mkdir -p again
"$clonefs" web1 again || echo "(exit status $?)"

say "Unmount everything (each daemon flushes and exits)"
for c in "${clones[@]}"; do
  pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$c/.clonefs/lock.owner")
  fusermount3 -u "mnt/$c"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  echo "mnt/$c unmounted"
done
"$clonectl" info db1 | sed -n '3p'

say "A snapshot point of web1, and a linked clone of it: a clone of a clone"
"$clonectl" snapshot web1 configured
"$clonectl" clone web1 web1-copy --linked --snapshot configured
clones+=(web1-copy)
mkdir -p mnt/web1-copy
"$clonefs" web1-copy mnt/web1-copy
printf 'web1-copy /etc/hostname: %s\n' "$(debugfs -R 'cat /etc/hostname' mnt/web1-copy/base-flat.vmdk 2>/dev/null)"
"$clonectl" snapshots web1

say "A snapshot point a clone depends on cannot be deleted"
"$clonectl" delete web1 --snapshot configured || echo "(exit status $?)"

say "A full clone of the snapshot point: an independent monolithicSparse VMDK (no clonefs needed)"
"$clonectl" clone web1 web1-full --full --snapshot configured
qemu-img check web1-full/base.vmdk
printf 'web1-full /etc/hostname: %s\n' "$(qemu-img convert -O raw web1-full/base.vmdk full.raw && debugfs -R 'cat /etc/hostname' full.raw 2>/dev/null; rm -f full.raw)"

say "Unmount the clone of the clone"
pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' web1-copy/.clonefs/lock.owner)
fusermount3 -u mnt/web1-copy
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
echo "mnt/web1-copy unmounted"
