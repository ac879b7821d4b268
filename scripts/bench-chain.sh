#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Chain depth: reads of a clone whose chain has 1, 8 and 32 snapshot layers, each layer
# holding 1 % of the blocks, against a qcow2 backing chain of the same depths served by
# qemu-storage-daemon (qsd). The goal (DESIGN.md, "Chain lookup must not slow down with
# depth"): clonefs at depth N reads at >= 0.95x its depth-1 rate, in every run.
#
# The parent is the clone part's 1 GiB monolithicSparse VMDK of random data
# ($BENCH_DIR/clone/golden-1G.vmdk, made here the same way if missing). Per depth N:
#   clonefs  `clonectl clone golden-1G.vmdk vmN`, then N times: mount, write 1 % of the
#            blocks (2621 distinct random 4 KiB blocks, qemu-io -t unsafe, a different
#            random set per layer, the same sets as qcow2's), unmount, `clonectl snapshot
#            vmN sK`; the reader is `clonectl clone vmN readerN --snapshot sN` (N frozen
#            layers under an empty top), mounted with clonefs.
#   qcow2    N overlays `qemu-img create -f qcow2 -b <below>` over golden-1G.vmdk, each
#            taking the same writes, and an empty top overlay, exported writable by qsd.
# Jobs (fio psync, iodepth 1, O_DIRECT on the exported file):
#   randread  4 KiB random reads over the whole disk, time based (BENCH_FIO_SECONDS),
#             each block at most once
#   seqread   1 MiB sequential reads: one pass cold; warm, passes for BENCH_FIO_SECONDS
# each twice: cold, on a freshly started export with the page cache dropped (what the
# device must deliver: the chain's files hold more bytes at depth, 32 layers of 1 % shadow
# 28 % of the base, so the MiB the device read are shown beside), and warm, every file of
# the chain read into the page cache first (cat, untimed): the cost of the reads
# themselves, lookup included, as for a golden image many clones keep cached (DESIGN.md,
# "Processes and locking").
# RUNS rounds; in each, every chain of both targets is exported at once and each job runs
# on all of them back to back (the orders of targets and depths rotate).
# Reported per round: IOPS / MiB/s and the ratio to depth 1 of the same target, job and
# round; then the minimum ratio over the rounds, the goal checked on clonefs. Also each
# chain's host space (du of its layer files) against the data written into it.
#
# Usage: scripts/bench-chain.sh       (or scripts/bench.sh chain)
#   BENCH_DIR, BUILD_DIR, RUNS, BENCH_FIO_SECONDS as for scripts/bench.sh
#   BENCH_DEPTHS  the depths to measure (default "1 8 32"; the first is the reference)
# Needs root. About 17 minutes on 2 cores with the defaults (plus the parent, once).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bench_dir=${BENCH_DIR:-/var/tmp/clonefs-bench}
runs=${RUNS:-3}
fio_seconds=${BENCH_FIO_SECONDS:-10}
read -r -a depths <<<"${BENCH_DEPTHS:-1 8 32}"
blocks_per_layer=2621  # 1 % of the 262144 blocks of 1 GiB

die() { echo "bench-chain: $*" >&2; exit 1; }
say() { printf '\n=== %s\n' "$*"; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
for d in "${depths[@]}"; do [[ $d =~ ^[1-9][0-9]*$ ]] || die "bad depth '$d'"; done

if [ -n "${BUILD_DIR:-}" ]; then
  build_dir=$(cd "$BUILD_DIR" && pwd)
else
  build_dir=$root/build/release
  [ -f build/release/build.ninja ] || cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release --target clonectl clonefs >/dev/null
fi
clonectl=$build_dir/tools/clonectl
clonefs=$build_dir/fs/clonefs
for tool in fio qemu-img qemu-io qemu-storage-daemon fusermount3 python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done

mkdir -p "$bench_dir/clone"
golden=$bench_dir/clone/golden-1G.vmdk
if [ ! -f "$golden" ]; then
  say "Making the 1 GiB parent (random data)"
  head -c 1G /dev/urandom >"$bench_dir/clone/x.raw"
  qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$bench_dir/clone/x.raw" "$golden"
  rm -f "$bench_dir/clone/x.raw"
fi

work=$(mktemp -d /var/tmp/clonefs-chain.XXXXXX)
declare -A live_mounts=() live_qsd=()
cleanup() {
  local m p
  for m in "${!live_mounts[@]}"; do fusermount3 -u -z "$m" 2>/dev/null || true; done
  for p in "${!live_qsd[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    fusermount3 -u -z "${live_qsd[$p]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# The block device under BENCH_DIR and its sectors read so far (/proc/diskstats).
bench_device=$(lsblk -no PKNAME "$(df --output=source "$bench_dir" | tail -1)" 2>/dev/null || true)
[ -n "$bench_device" ] || bench_device=$(basename "$(df --output=source "$bench_dir" | tail -1)")
sectors_read() { awk -v d="$bench_device" '$3 == d { print $6; found = 1 } END { if (!found) print 0 }' /proc/diskstats; }
mount_vm() {  # VM MNT
  mkdir -p "$2"
  "$clonefs" "$1" "$2" || die "clonefs $1 $2 failed"
  live_mounts[$2]=1
}
unmount_vm() {  # VM MNT: unmount and wait for the daemon to flush and exit
  local pid
  pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$1/.clonefs/lock.owner")
  for _ in $(seq 50); do fusermount3 -u "$2" 2>/dev/null && break; sleep 0.1; done
  for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  unset "live_mounts[$2]"
}
qsd_start() {  # OVERLAY FILE: sets qsd_pid
  : >"$2"
  qemu-storage-daemon \
    --blockdev "driver=file,filename=$1,node-name=file0" \
    --blockdev driver=qcow2,file=file0,node-name=ov0 \
    --export "type=fuse,id=exp0,node-name=ov0,mountpoint=$2,writable=on" \
    >"$2.log" 2>&1 &
  qsd_pid=$!
  live_qsd[$qsd_pid]=$2
  for _ in $(seq 200); do
    grep -q " $2 fuse" /proc/mounts && return 0
    sleep 0.05
  done
  cat "$2.log" >&2
  die "qemu-storage-daemon did not export $2"
}
qsd_stop() {
  kill -TERM "$qsd_pid" 2>/dev/null || true  # already gone: its wait says how
  wait "$qsd_pid" || true
  unset "live_qsd[$qsd_pid]"
}

# The qemu-io writes of layer K: 1 % of the blocks, distinct, a different set per layer.
layer_commands() {
  python3 - "$1" "$blocks_per_layer" <<'PY'
import random, sys
k, n = int(sys.argv[1]), int(sys.argv[2])
blocks = random.Random(1000 + k).sample(range(262144), n)
print("\n".join(f"write -q -P {1 + (b + k) % 250} {b * 4096} 4k" for b in blocks))
PY
}

# fio_job FILE NAME cold|warm ARGS...: prints IOPS for randread, MiB/s for seqread, then
# the MiB the device read meanwhile.
fio_job() {
  local file=$1 name=$2 cache=$3; shift 3
  if [ "$cache" = cold ]; then drop_caches; fi
  local before
  before=$(sectors_read)
  fio --name="$name" --filename="$file" --ioengine=psync --iodepth=1 --direct=1 --numjobs=1 \
    --output-format=json --output="$work/fio.json" "$@" >/dev/null 2>"$work/fio.err" ||
    { cat "$work/fio.err" >&2; die "fio $name on $file failed"; }
  python3 - "$work/fio.json" "$name" "$(( ($(sectors_read) - before) / 2048 ))" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
r = json.loads(text[text.index("{"):])["jobs"][0]["read"]
print(f"{r['iops']:.0f}" if sys.argv[2] == "randread" else f"{r['bw'] / 1024:.1f}", sys.argv[3])
PY
}

say "Building the chains (depths ${depths[*]})"
data_bytes() { echo $(($1 * blocks_per_layer * 4096)); }
declare -A chain_bytes=() chain_files=()
for n in "${depths[@]}"; do
  t0=$(date +%s)
  vm=$work/vm$n
  "$clonectl" clone "$golden" "$vm" >/dev/null
  below=$golden
  below_fmt=vmdk
  for ((k = 1; k <= n; k++)); do
    layer_commands "$k" >"$work/cmds"
    mount_vm "$vm" "$work/mnt-build"
    qemu-io -t unsafe -f vmdk "$work/mnt-build/golden-1G.vmdk" <"$work/cmds" >/dev/null
    unmount_vm "$vm" "$work/mnt-build"
    "$clonectl" snapshot "$vm" "s$k" >/dev/null
    ov=$work/q$n-$k.qcow2
    qemu-img create -q -f qcow2 -b "$below" -F "$below_fmt" "$ov"
    qemu-io -t unsafe -f qcow2 "$ov" <"$work/cmds" >/dev/null
    below=$ov
    below_fmt=qcow2
  done
  "$clonectl" clone "$vm" "$work/reader$n" --snapshot "s$n" >/dev/null
  qemu-img create -q -f qcow2 -b "$below" -F qcow2 "$work/q$n-top.qcow2"
  sync
  # Every file each reader's chain reads, for the warm jobs.
  chain_files[clonefs,$n]="$golden $(ls "$vm"/.clonefs/*.packed "$work/reader$n"/.clonefs/*.delta | tr '\n' ' ')"
  chain_files[qcow2,$n]="$golden $(ls "$work"/q"$n"-*.qcow2 | tr '\n' ' ')"
  chain_bytes[clonefs,$n]=$(du -B1 -c "$vm"/.clonefs/*.delta "$vm"/.clonefs/*.packed "$vm"/.clonefs/*.map "$vm"/.clonefs/*.sums | tail -1 | cut -f1)
  chain_bytes[qcow2,$n]=$(du -B1 -c "$work"/q"$n"-*.qcow2 | tail -1 | cut -f1)
  echo "depth $n: built in $(($(date +%s) - t0)) s; data written $(numfmt --to=iec "$(data_bytes "$n")"), clonefs chain $(numfmt --to=iec "${chain_bytes[clonefs,$n]}"), qcow2 chain $(numfmt --to=iec "${chain_bytes[qcow2,$n]}")"
done

declare -A vals=()  # TARGET,TEST,DEPTH -> one value per round
declare -A files=() qsd_pids=()
targets=(clonefs qcow2)
tests=(cold-randread cold-seqread warm-randread warm-seqread)
# start_export TARGET DEPTH / stop_export TARGET DEPTH: the chain's reader, mounted by
# clonefs or exported by qsd, at ${files[TARGET,DEPTH]}.
start_export() {
  if [ "$1" = clonefs ]; then
    mount_vm "$work/reader$2" "$work/mnt-read$2"
    files[clonefs,$2]=$work/mnt-read$2/golden-1G-flat.vmdk
  else
    qsd_start "$work/q$2-top.qcow2" "$work/qsd$2.img"
    qsd_pids[$2]=$qsd_pid
    files[qcow2,$2]=$work/qsd$2.img
  fi
}
stop_export() {
  if [ "$1" = clonefs ]; then
    unmount_vm "$work/reader$2" "$work/mnt-read$2"
  else
    qsd_pid=${qsd_pids[$2]}
    qsd_stop
  fi
}
# run_test TARGET DEPTH TEST: one job on the running export; prints its value and the
# device MiB read. (It runs in a subshell: it must not start or stop exports.)
run_test() {
  local target=$1 n=$2 test=$3 cache=${3%%-*} job=${3#*-}
  if [ "$cache" = warm ]; then
    # shellcheck disable=SC2086  # a list of paths without spaces
    cat ${chain_files[$target,$n]} >/dev/null || return 1
  fi
  if [ "$job" = randread ]; then
    fio_job "${files[$target,$n]}" randread "$cache" --rw=randread --bs=4k --time_based \
      --runtime="$fio_seconds"
  elif [ "$cache" = cold ]; then
    # One pass: a second would find the disk cached.
    fio_job "${files[$target,$n]}" seqread cold --rw=read --bs=1M --size=1G
  else
    # Passes for as long as the random job runs: one takes a third of a second, too
    # short to measure evenly.
    fio_job "${files[$target,$n]}" seqread warm --rw=read --bs=1M --size=1G --time_based \
      --runtime="$fio_seconds"
  fi
}
for ((round = 1; round <= runs; round++)); do
  say "Round $round of $runs"
  # Every chain of both targets is exported for the whole round (a cold job restarts its
  # own export), and each test runs on all of them back to back: the depths a ratio
  # compares are measured within a minute of each other, not several minutes apart (this
  # VM's device and CPU speed drift that much).
  for n in "${depths[@]}"; do
    for target in "${targets[@]}"; do start_export "$target" "$n"; done
  done
  # The orders rotate, so that neither target nor any depth always goes first.
  order=("${targets[@]}")
  ((round % 2 == 0)) && order=(qcow2 clonefs)
  depth_order=("${depths[@]}")
  if ((round % 2 == 0)); then
    depth_order=()
    for ((i = ${#depths[@]} - 1; i >= 0; i--)); do depth_order+=("${depths[$i]}"); done
  fi
  declare -A lines=()
  for test in "${tests[@]}"; do
    for target in "${order[@]}"; do
      for n in "${depth_order[@]}"; do
        if [ "${test%%-*}" = cold ]; then
          # A fresh daemon: nothing cached in it (qemu's qcow2 metadata cache, clonefs's
          # mappings of frozen layers, whose pages drop_caches cannot drop while mapped).
          stop_export "$target" "$n"
          start_export "$target" "$n"
        fi
        out=$(run_test "$target" "$n" "$test")
        read -r value mib <<<"$out"
        vals[$target,$test,$n]+="$value "
        lines[$target,$n]+=$(printf '  %s %7s (device %5s MiB)' "$test" "$value" "$mib")
      done
    done
  done
  for n in "${depths[@]}"; do
    for target in "${targets[@]}"; do stop_export "$target" "$n"; done
  done
  for target in "${targets[@]}"; do
    for n in "${depths[@]}"; do
      printf '  %-8s depth %-3s%s\n' "$target" "$n" "${lines[$target,$n]}"
    done
  done
  unset lines
done

say "Results: ratio to depth ${depths[0]} of the same target and round (goal: clonefs >= 0.95 in every round)"
ref=${depths[0]}
missed=0
printf '%-8s %-14s %-6s %-40s %-40s %s\n' target test depth "per round" "ratio to depth $ref" "min ratio"
for target in "${targets[@]}"; do
  for test in cold-randread cold-seqread warm-randread warm-seqread; do
    read -r -a base <<<"${vals[$target,$test,$ref]}"
    for n in "${depths[@]}"; do
      read -r -a v <<<"${vals[$target,$test,$n]}"
      ratios=""
      min=""
      for ((i = 0; i < runs; i++)); do
        r=$(awk -v a="${v[$i]}" -v b="${base[$i]}" 'BEGIN { printf "%.3f", a / b }')
        ratios+="$r "
        if [ -z "$min" ] || awk -v a="$r" -v b="$min" 'BEGIN { exit !(a < b) }'; then min=$r; fi
      done
      flag=""
      if [ "$target" = clonefs ] && awk -v m="$min" 'BEGIN { exit !(m < 0.95) }'; then
        flag="  MISSED"
        missed=1
      fi
      printf '%-8s %-14s %-6s %-40s %-40s %s%s\n' "$target" "$test" "$n" "${vals[$target,$test,$n]}" "$ratios" "$min" "$flag"
    done
  done
done

say "Chain size (host bytes of the layer files) against the data written"
printf '%-6s %-12s %-16s %-16s\n' depth written clonefs qcow2
for n in "${depths[@]}"; do
  printf '%-6s %-12s %-16s %-16s\n' "$n" "$(numfmt --to=iec "$(data_bytes "$n")")" \
    "$(numfmt --to=iec "${chain_bytes[clonefs,$n]}") ($(awk -v a="${chain_bytes[clonefs,$n]}" -v b="$(data_bytes "$n")" 'BEGIN { printf "%.2fx", a / b }'))" \
    "$(numfmt --to=iec "${chain_bytes[qcow2,$n]}") ($(awk -v a="${chain_bytes[qcow2,$n]}" -v b="$(data_bytes "$n")" 'BEGIN { printf "%.2fx", a / b }'))"
done
if ((missed)); then echo "GOAL MISSED: clonefs read slower at depth than at depth $ref in some round"; fi
