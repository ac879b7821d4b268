#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks clonefs. Two parts, each side by side with the reference tool in one run:
#
# export: `clonectl export` against `qemu-img convert -O raw`, and clonectl's memory.
#  1. Export speed. A 4 GiB raw disk, 60 % allocated (6 MiB of data, 4 MiB hole, repeated;
#     fio --fallocate=none so the holes really are holes) with half-compressible data
#     (fio --buffer_compress_percentage=50), is converted by qemu-img once into a
#     monolithicSparse and a streamOptimized VMDK (all three cached in $BENCH_DIR). For
#     each VMDK, RUNS timed runs of each tool, alternating (the starting tool rotates every
#     round), write the whole disk as a sparse raw file:
#       - clonectl export X out.raw          (fdatasyncs out.raw before renaming it)
#       - qemu-img convert -t writeback ...  (flushes the output on close: the fair match)
#       - qemu-img convert ...               (qemu-img's default output cache mode for
#                                             convert is 'unsafe': it never flushes, so its
#                                             data may still be dirty in the page cache)
#     each with a cold page cache (sync; echo 3 > /proc/sys/vm/drop_caches before every
#     run) and with a warm one (nothing dropped; the source is read once, untimed, first).
#     Reported: median wall seconds, MB/s of virtual disk (10^6 B/s), and the ratio
#     qemu-img time / clonectl time (>= 1: clonectl is at least as fast). Once per format
#     clonectl's output and qemu-img's are compared with cmp; a mismatch fails the run.
#  2. Memory. Peak RSS (GNU time %M) and wall time of `clonectl inspect` and
#     `clonectl export` on a 2 TiB monolithicSparse disk with 1 MiB written at six places
#     from the first to the last MiB (qemu-img create + qemu-io), and on the 4 GiB disks
#     above. The goal is under 64 MiB. qemu-img convert on the 2 TiB disk is shown too.
#
# clone: a linked clone mounted by the clonefs daemon, against the same data without FUSE
#     and against qemu-storage-daemon (qsd) serving a qcow2 overlay through its FUSE export.
#  3. I/O. The parent is a 1 GiB monolithicSparse VMDK made by qemu-img from 1 GiB of
#     /dev/urandom (every grain written, incompressible), cached in $BENCH_DIR/clone.
#     Three targets, in an order that rotates every round:
#       clonefs  the presented D-flat.vmdk of `clonectl clone golden-1G.vmdk C --linked`
#                mounted with `clonefs C MNT`
#       raw      `qemu-img convert -O raw` of the parent, read and written directly
#       qsd      `qemu-img create -f qcow2 -b golden-1G.vmdk -F vmdk` exported by
#                qemu-storage-daemon --export type=fuse,writable=on (cache options default)
#     fio: psync, iodepth 1, O_DIRECT, one job, the page cache dropped before every job.
#       seqread     1 MiB sequential reads, one pass over the disk (a second pass would
#                   come from the page cache for clonefs and qsd, not for raw's O_DIRECT)
#       randread    4 KiB random reads of untouched (parent) data, time based
#                   (BENCH_FIO_SECONDS), each block at most once (fio's random map)
#       firsttouch  4 KiB random writes over a BENCH_FT_MIB region, each block once (fio's
#                   random map), then fsync (--end_fsync=1, counted in fio's runtime)
#       readafter   4 KiB random reads of that region, each block once: blocks the same
#                   clone / overlay / copy wrote just before
#       mix         4 KiB random 70 % reads / 30 % writes over the whole disk, time based
#     The two reads share an untouched target; firsttouch+readafter get a fresh clone /
#     overlay / raw copy, and so does mix. Result: the median over RUNS rounds (MiB/s for
#     seqread, IOPS otherwise; mix counts reads and writes) and the ratios to raw and qsd.
#  4. Time. `clonectl clone` (wall, and the time clonectl prints) and `clonefs` until it
#     returns (the mount is ready) for parents of 1 GiB and of 1 TiB (qemu-img create,
#     1 MiB written at four places by qemu-io): BENCH_TIME_RUNS rounds, each once with a
#     warm page cache (the goal is checked on these) and once after dropping it.
#  5. Space. A clone of an empty 64 GiB parent takes 10,000 4 KiB writes at distinct
#     random blocks (fio random map, --io_size=40000k over --size=64g); after the unmount
#     (and the daemon's exit) `du --block-size=1` of its delta + map, per guest byte
#     written (40,960,000). A qcow2 overlay through qsd takes the same writes for reference.
#  6. Memory. The clonefs daemon's peak RSS (VmHWM of the pid in .clonefs/lock.owner),
#     read just before each unmount of a 1 GiB clone, after its fio jobs; qsd's likewise.
#  When clonefs misses an I/O goal and BENCH_PERF is not 0, the group of jobs holding the
#  missed test is run once more on a fresh clone with `perf record -g -p DAEMON_PID`
#  attached during that test's fio job; the top of `perf report --no-children` is printed
#  and the data kept as $BENCH_DIR/perf-TEST.data (report text beside it).
#
# full: `clonectl clone SRC DEST --full` against `qemu-img convert -O vmdk` (whose default
#     subformat is monolithicSparse, the format clonectl writes).
#  7. Speed. SRC is a 1 GiB two-link chain cached in $BENCH_DIR/full: base-1G.vmdk, an ext4
#     file system that mkfs.ext4 -d fills with a hard-linked copy of /usr/include and
#     /usr/bin (many small files; about two thirds of the disk allocated), converted by
#     qemu-img to monolithicSparse; and top-1G.vmdk, its monolithicSparse child (qemu-img
#     create -b) with 600 writes of 4 to 256 KiB at seeded random places (about 80 MiB).
#     RUNS rounds, the page cache dropped before every run, in an order that rotates:
#       clonectl      clonectl clone top-1G.vmdk D --full  (fdatasyncs each disk before
#                     renaming it into place)
#       qemu-default  qemu-img convert -O vmdk top-1G.vmdk X.vmdk  (convert's default cache
#                     mode 'unsafe': it never flushes, its data may still be dirty in the
#                     page cache when it exits)
#       qemu-wb       the same with -t writeback (flushes; QEMU's vmdk driver syncs every
#                     grain-table update then, which is what makes it slow)
#     Reported: median wall seconds, MB/s of virtual disk (10^6 B/s), the ratios qemu-img
#     time / clonectl time (>= 1: clonectl at least as fast) and the space each output
#     takes. Once, clonectl's output must pass `qemu-img check` and compare identical to
#     the source and to qemu-img's output (`qemu-img compare`); a mismatch fails the run.
#
# chain: reads of clones over 1, 8 and 32 snapshot layers against a qcow2 backing chain
#     of the same depths under qsd; scripts/bench-chain.sh (its header says how).
#
# Usage: scripts/bench.sh [all | export | clone | full | chain]   (no argument: all = every part)
#   BENCH_DIR   work dir holding the cached images   (default /var/tmp/clonefs-bench)
#   BUILD_DIR   CMake build dir with tools/clonectl and fs/clonefs to benchmark (default
#               build/release, configured and built incrementally first; when BUILD_DIR is
#               set nothing is built and its binaries are used as they are)
#   CLONECTL    path to a clonectl binary to use instead (export part; old name, kept)
#   RUNS        export: timed runs per tool, format and cache; clone: rounds of the fio
#               jobs per target (default 3)
#   export part:
#   BENCH_SIZE  virtual size of the speed-test disk  (default 4G; e.g. 1G for a smoke run)
#   BENCH_QEMU_DEFAULT=0  skip the qemu-img default-cache ('unsafe') runs
#   clone part:
#   BENCH_FIO_SECONDS  length of each time-based fio job   (default 10)
#   BENCH_FT_MIB       first-touch region, MiB              (default 128; capped at 60 s)
#   BENCH_TIME_RUNS    rounds of clone + mount timing       (default 5)
#   BENCH_PERF=0       never profile (default: profile the missed I/O goals, needs perf)
#   full part:
#   BENCH_FULL_WB=0    skip the qemu-img -t writeback runs (about 11 s each here)
# Needs root (drop_caches, FUSE mounts; without drop_caches the cold-cache rows are
# skipped). On 2 cores the export part takes about 10 minutes (plus about 1.5 minutes the
# first time, to make the images), the clone part about 15 (plus a minute or two for its
# images, and a minute per profiled test), the full part about 2 (plus half a minute for
# its images). Mountpoints live in a mktemp -d under /tmp;
# every mount and qemu-storage-daemon is removed on exit, failure or Ctrl-C.
# Exits non-zero if an output differs or a command fails; a missed goal is reported in
# the summary, not as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

part=${1:-all}
usage="usage: scripts/bench.sh [all | export | clone | full | chain]"
case $part in
  all | export | clone | full | chain) ;;
  -h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
want() { [ "$part" = all ] || [ "$part" = "$1" ]; }
(($# <= 1)) || { echo "$usage" >&2; exit 2; }
if [ "$part" = chain ]; then exec bash scripts/bench-chain.sh; fi

bench_dir=${BENCH_DIR:-/var/tmp/clonefs-bench}
runs=${RUNS:-3}
size=${BENCH_SIZE:-4G}
qemu_default=${BENCH_QEMU_DEFAULT:-1}
fio_seconds=${BENCH_FIO_SECONDS:-10}
ft_mib=${BENCH_FT_MIB:-128}
time_runs=${BENCH_TIME_RUNS:-5}
bench_perf=${BENCH_PERF:-1}
full_wb=${BENCH_FULL_WB:-1}
rss_goal_mib=64

die() { echo "bench: $*" >&2; exit 1; }
say() { printf '\n=== %s\n' "$*"; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$runs'"
[[ $size =~ ^[1-9][0-9]*G$ ]] || die "BENCH_SIZE must be whole GiB like 4G, not '$size'"
[[ $fio_seconds =~ ^[1-9][0-9]*$ ]] || die "BENCH_FIO_SECONDS must be a positive integer"
if ! [[ $ft_mib =~ ^[1-9][0-9]*$ ]] || ((ft_mib > 1024)); then die "BENCH_FT_MIB must be 1..1024"; fi
[[ $time_runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIME_RUNS must be a positive integer"

bash scripts/install-deps.sh
needed_tools=(fio qemu-img qemu-io cmp dd truncate numfmt flock awk /usr/bin/time)
if want clone; then
  needed_tools+=(qemu-storage-daemon fusermount3 python3 du)
  [ "$bench_perf" = 0 ] || needed_tools+=(perf)
fi
want full && needed_tools+=(mkfs.ext4 du xargs)
for tool in "${needed_tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh should install it)"
done

targets=(clonectl)
want clone && targets+=(clonefs)
if [ -n "${BUILD_DIR:-}" ]; then
  build_dir=$(cd "$BUILD_DIR" && pwd) || die "BUILD_DIR $BUILD_DIR: no such directory"
else
  # Incremental: builds the binaries if they are missing, refreshes them if the sources
  # changed.
  build_dir=$root/build/release
  if [ ! -f build/release/build.ninja ]; then
    cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build build/release --target "${targets[@]}" >/dev/null
fi
clonectl=${CLONECTL:-$build_dir/tools/clonectl}
clonefs=$build_dir/fs/clonefs
[ -x "$clonectl" ] || die "$clonectl is not executable"
if want clone; then [ -x "$clonefs" ] || die "$clonefs is not executable"; fi

mkdir -p "$bench_dir"
exec 9>"$bench_dir/.lock"
flock -n 9 || die "another bench.sh is using $bench_dir"
out_dir=$bench_dir/out
log=$bench_dir/last-command.log
rm -rf "$out_dir"
mkdir -p "$out_dir"
mnt_dir=$(mktemp -d /tmp/clonefs-bench.XXXXXX)

# What is live, so that an exit of any kind (failure, Ctrl-C) removes it.
declare -A live_mounts=()  # clonefs mountpoint -> daemon pid (0: unknown)
declare -A live_qsd=()     # qemu-storage-daemon pid -> its export file
declare -A live_perf=()    # perf record pid -> 1

mounted() { awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo; }
wait_gone() {  # PID SECONDS: waits for a process that is not our child to exit
  local i
  for ((i = 0; i < $2 * 20; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  return 1
}
cleanup() {
  set +e
  local p m
  for p in "${!live_perf[@]}"; do kill -INT "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for m in "${!live_mounts[@]}"; do
    fusermount3 -u "$m" 2>/dev/null || { sleep 0.5; fusermount3 -u "$m" 2>/dev/null; } ||
      fusermount3 -u -z "$m"
    p=${live_mounts[$m]}
    ((p > 0)) && ! wait_gone "$p" 60 && echo "bench: clonefs daemon $p did not exit" >&2
  done
  for p in "${!live_qsd[@]}"; do
    kill -TERM "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    mounted "${live_qsd[$p]}" && fusermount3 -u -z "${live_qsd[$p]}"
  done
  # Never rm -rf through a live mount: the clone directories are reachable through it.
  if grep -q " ${mnt_dir}/" /proc/self/mountinfo; then
    echo "bench: something is still mounted under $mnt_dir; left $mnt_dir and $out_dir" >&2
  else
    rm -rf "$mnt_dir" "$out_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Benchmark private copies, so a concurrent rebuild cannot swap a binary in the middle of
# the runs.
cp "$clonectl" "$out_dir/clonectl"
clonectl_src=$clonectl
clonectl=$out_dir/clonectl
if want clone; then
  cp "$clonefs" "$out_dir/clonefs"
  clonefs_src=$clonefs
  clonefs=$out_dir/clonefs
fi

can_drop=0
if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then can_drop=1; fi

# ---------------------------------------------------------------------------- helpers

size_bytes=$(( ${size%G} * 1024 * 1024 * 1024 ))
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
cold() { if ((can_drop)); then drop_caches; else sync; fi; }
alloc_bytes() { echo $(( $(stat -c '%b * %B' "$1") )); }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }  # KiB -> MiB

# timed LABEL CMD...: runs CMD with stdout+stderr to $log; sets $secs and $rss_kib.
timed() {
  local label=$1; shift
  if ! /usr/bin/time -f '%e %M' -o "$out_dir/.time" "$@" >"$log" 2>&1; then
    echo "bench: $label failed: $*" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  read -r secs rss_kib < <(tail -n 1 "$out_dir/.time")
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 }
  END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { tr ' ' '\n' | grep . | sort -g | tail -n 1; }
mbps() { awk -v b="$size_bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
ratio() { awk -v q="$1" -v c="$2" 'BEGIN { printf "%.2f", q / c }'; }

# Recipes: a cached file is reused only if it was made by the same recipe.
cached() { [ -f "$1" ] && [ -f "$1.recipe" ] && [ "$(cat "$1.recipe")" = "$2" ]; }
mark() { printf '%s' "$2" >"$1.recipe"; }

# ------------------------------------------------------------------------ the machine

say "clonefs benchmark ($part)"
echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine:   $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "qemu-img:  $(qemu-img --version | head -n 1)"
echo "clonectl:  $clonectl_src (git $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown))"
if want clone; then
  echo "clonefs:   $clonefs_src"
  echo "qsd:       $(qemu-storage-daemon --version | head -n 1)"
  echo "fio:       $(fio --version)"
fi
if ((can_drop == 0)); then echo "NOTE: cannot write /proc/sys/vm/drop_caches (not root?): cold-cache runs skipped"; fi

failed=0
# ---------------------------------------------------------------- part: export

export_part() {
  say "Export: clonectl export against qemu-img convert"
  qemu_default_cache=$(qemu-img --help | grep -o "'[a-z]*' (default for convert)" | cut -d"'" -f2 || true)
  echo "qemu-img convert's default output cache mode: ${qemu_default_cache:-unknown} (-t writeback flushes on close)"
  echo "work dir:  $bench_dir, $runs run(s) per tool, format and cache, disk $size"
  need=$(( 2 * size_bytes * 6 / 10 ))  # two outputs at once
  for f in "src-$size.raw" "sparse-$size.vmdk" "stream-$size.vmdk"; do
    [ -f "$bench_dir/$f" ] || need=$(( need + size_bytes * 6 / 10 ))
  done
  avail=$(( $(df -Pk "$bench_dir" | awk 'NR == 2 { print $4 }') * 1024 ))
  ((avail > need + (1 << 30))) || die "$bench_dir needs about $((need >> 30)) GiB free, has $((avail >> 30)) GiB"

  # --------------------------------------------------------------------------- images

  say "Images (cached in $bench_dir)"
  src=$bench_dir/src-$size.raw
  recipe_src="fio --name=fill --size=$size --rw=write:4M --bs=6M --buffer_compress_percentage=50 --refill_buffers --ioengine=psync --fallocate=none; truncate -s $size"
  if ! cached "$src" "$recipe_src"; then
    echo "making $src (fio)"
    rm -f "$src" "$src.recipe" "$src.tmp"
    # --fallocate=none: fio otherwise preallocates the whole file, holes included.
    fio --name=fill --filename="$src.tmp" --size="$size" --rw=write:4M --bs=6M \
      --buffer_compress_percentage=50 --refill_buffers --ioengine=psync --fallocate=none \
      --output=/dev/null
    truncate -s "$size" "$src.tmp"
    mv "$src.tmp" "$src"
    mark "$src" "$recipe_src"
  fi
  src_alloc=$(alloc_bytes "$src")
  src_pct=$(awk -v a="$src_alloc" -v s="$size_bytes" 'BEGIN { printf "%.2f", 100 * a / s }')
  echo "src-$size.raw: $(stat -c %s "$src") bytes, $src_alloc allocated ($src_pct %)"
  awk -v p="$src_pct" 'BEGIN { exit !(p >= 59 && p <= 61) }' ||
    die "$src is $src_pct % allocated, not 60 %: delete it and check the fio recipe"

  declare -A vmdk
  for fmt in monolithicSparse streamOptimized; do
    case $fmt in monolithicSparse) short=sparse ;; *) short=stream ;; esac
    file=$bench_dir/$short-$size.vmdk
    recipe="qemu-img convert -f raw -O vmdk -o subformat=$fmt src-$size.raw ($recipe_src)"
    if ! cached "$file" "$recipe"; then
      echo "making $file (qemu-img convert, subformat=$fmt)"
      rm -f "$file" "$file.recipe"
      qemu-img convert -f raw -O vmdk -o "subformat=$fmt" "$src" "$file.tmp.vmdk"
      mv "$file.tmp.vmdk" "$file"
      mark "$file" "$recipe"
    fi
    vmdk[$fmt]=$file
    echo "$(basename "$file"): $(stat -c %s "$file") bytes"
  done

  big=$bench_dir/big-2T.vmdk
  big_offsets=(0 1G 512G 1T 1536G $(( (2 << 40) - (1 << 20) )))
  recipe_big="qemu-img create -f vmdk 2T; qemu-io write -P 0x11 at ${big_offsets[*]} 1M"
  if ! cached "$big" "$recipe_big"; then
    echo "making $big (qemu-img create + qemu-io)"
    rm -f "$big" "$big.recipe"
    qemu-img create -q -f vmdk "$big.tmp.vmdk" 2T
    for o in "${big_offsets[@]}"; do
      qemu-io -f vmdk -c "write -P 0x11 $o 1M" "$big.tmp.vmdk" >/dev/null
    done
    mv "$big.tmp.vmdk" "$big"
    mark "$big" "$recipe_big"
  fi
  echo "big-2T.vmdk: $(stat -c %s "$big") bytes, 1 MiB of 0x11 at each of ${big_offsets[*]}"

  # ---------------------------------------------------------------------- export speed

  tools=(clonectl qemu-wb)
  ((qemu_default)) && tools+=(qemu-default)
  caches=()
  ((can_drop)) && caches+=(cold)
  caches+=(warm)

  # run_tool TOOL DISK OUT: one timed export; sets $secs and $rss_kib.
  run_tool() {
    case $1 in
      clonectl) timed "clonectl export" "$clonectl" export "$2" "$3" ;;
      qemu-wb) timed "qemu-img convert -t writeback" qemu-img convert -t writeback -f vmdk -O raw "$2" "$3" ;;
      qemu-default) timed "qemu-img convert" qemu-img convert -f vmdk -O raw "$2" "$3" ;;
    esac
  }

  declare -A times rss verified
  failed=0
  for fmt in monolithicSparse streamOptimized; do
    for cache in "${caches[@]}"; do
      say "Export speed: $fmt, $cache cache"
      if [ "$cache" = warm ]; then cat "${vmdk[$fmt]}" >/dev/null; fi  # untimed warm-up read
      for ((round = 0; round < runs; round++)); do
        for ((k = 0; k < ${#tools[@]}; k++)); do
          tool=${tools[(round + k) % ${#tools[@]}]}
          out=$out_dir/$tool.raw
          if [ "$cache" = cold ]; then drop_caches; else sync; fi
          run_tool "$tool" "${vmdk[$fmt]}" "$out"
          times[$fmt,$cache,$tool]+="$secs "
          rss[$fmt,$tool]+="$rss_kib "
          printf '  run %d  %-13s %7.2f s  %6s MiB peak RSS  %s allocated\n' "$((round + 1))" \
            "$tool" "$secs" "$(mib "$rss_kib")" "$(alloc_bytes "$out")"
          # The first round's clonectl and qemu-img (writeback) outputs are kept to compare.
          if [ -n "${verified[$fmt]:-}" ] || [ "$tool" = qemu-default ]; then rm -f "$out"; fi
        done
        if [ -z "${verified[$fmt]:-}" ]; then
          if cmp "$out_dir/clonectl.raw" "$out_dir/qemu-wb.raw"; then
            verified[$fmt]=identical
            echo "  cmp: clonectl and qemu-img outputs are identical"
          else
            verified[$fmt]=DIFFERENT
            failed=1
            echo "  cmp: clonectl and qemu-img outputs DIFFER" >&2
          fi
          rm -f "$out_dir/clonectl.raw" "$out_dir/qemu-wb.raw"
        fi
      done
    done
  done

  # --------------------------------------------------------------------------- memory

  say "Memory: clonectl on the 2 TiB disk and the $size disks"
  declare -a mem_rows
  mem_row() {  # image command seconds rss_kib
    local ok=ok
    (($4 < rss_goal_mib * 1024)) || ok=OVER
    mem_rows+=("$(printf '| %-27s | %-40s | %8s | %13s | %-8s |' "$1" "$2" "$3" "$(mib "$4")" "$ok")")
    printf '  %-27s %-40s %8s s %8s MiB\n' "$1" "$2" "$3" "$(mib "$4")"
  }

  drop_caches 2>/dev/null || true
  timed "clonectl inspect" "$clonectl" inspect "$big"
  mem_row "2 TiB monolithicSparse" "clonectl inspect" "$secs" "$rss_kib"
  timed "clonectl export" "$clonectl" export "$big" "$out_dir/big.raw"
  mem_row "2 TiB monolithicSparse" "clonectl export" "$secs" "$rss_kib"
  # The export must hold exactly the six 1 MiB blocks of 0x11, everywhere else holes/zeros.
  [ "$(stat -c %s "$out_dir/big.raw")" = $((2 << 40)) ] || die "big.raw is not 2 TiB"
  big_alloc=$(alloc_bytes "$out_dir/big.raw")
  ((big_alloc >= 6 << 20 && big_alloc <= 8 << 20)) || die "big.raw has $big_alloc bytes allocated, not 6 MiB"
  head -c 1M /dev/zero | tr '\0' '\021' >"$out_dir/pattern"
  for o in "${big_offsets[@]}"; do
    o=$(numfmt --from=iec "$o")
    if ! dd if="$out_dir/big.raw" bs=1M skip=$((o >> 20)) count=1 status=none | cmp -s - "$out_dir/pattern"; then
      echo "bench: big.raw does not hold the 0x11 MiB at offset $o" >&2
      failed=1
    fi
  done
  echo "  big.raw: 2 TiB, $big_alloc bytes allocated, the six 0x11 MiBs in place"
  rm -f "$out_dir/big.raw"
  timed "qemu-img convert" qemu-img convert -t writeback -f vmdk -O raw "$big" "$out_dir/big.raw"
  mem_row "2 TiB monolithicSparse" "qemu-img convert -t writeback (ref.)" "$secs" "$rss_kib"
  rm -f "$out_dir/big.raw"

  for fmt in monolithicSparse streamOptimized; do
    timed "clonectl inspect" "$clonectl" inspect "${vmdk[$fmt]}"
    mem_row "${size%G} GiB $fmt" "clonectl inspect" "$secs" "$rss_kib"
    first_cache=${caches[0]}
    mem_row "${size%G} GiB $fmt" "clonectl export ($first_cache median, max RSS)" \
      "$(median <<<"${times[$fmt,$first_cache,clonectl]}")" "$(maxof <<<"${rss[$fmt,clonectl]}")"
    mem_row "${size%G} GiB $fmt" "qemu-img convert -t wb ($first_cache median)" \
      "$(median <<<"${times[$fmt,$first_cache,qemu-wb]}")" "$(maxof <<<"${rss[$fmt,qemu-wb]}")"
  done

  # -------------------------------------------------------------------------- summary

  say "Summary: export"
  echo "$(nproc) cores, kernel $(uname -r), $(qemu-img --version | head -n 1), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Disk: ${size%G} GiB virtual, $src_pct % allocated, half-compressible. Median of $runs run(s), alternating tools."
  echo "MB/s = virtual bytes / s / 10^6. ratio = qemu-img s / clonectl s (>= 1: clonectl at least as fast)."
  echo "qemu-img wb = convert -t writeback (flushes, like clonectl's fdatasync);"
  echo "qemu-img default = convert with its default cache mode (${qemu_default_cache:-unknown}: no flush)."
  echo
  header='| format           | cache | clonectl s | MB/s | qemu-img wb s | MB/s | ratio |'
  rule='| ---------------- | ----- | ---------: | ---: | ------------: | ---: | ----: |'
  if ((qemu_default)); then
    header+=' qemu-img default s | MB/s | ratio |'
    rule+=' -----------------: | ---: | ----: |'
  fi
  echo "$header"
  echo "$rule"
  for fmt in monolithicSparse streamOptimized; do
    for cache in "${caches[@]}"; do
      c=$(median <<<"${times[$fmt,$cache,clonectl]}")
      q=$(median <<<"${times[$fmt,$cache,qemu-wb]}")
      line=$(printf '| %-16s | %-5s | %10s | %4s | %13s | %4s | %5s |' "$fmt" "$cache" \
        "$c" "$(mbps "$c")" "$q" "$(mbps "$q")" "$(ratio "$q" "$c")")
      if ((qemu_default)); then
        d=$(median <<<"${times[$fmt,$cache,qemu-default]}")
        line+=$(printf ' %18s | %4s | %5s |' "$d" "$(mbps "$d")" "$(ratio "$d" "$c")")
      fi
      echo "$line"
    done
  done
  echo
  printf '| %-27s | %-40s | %8s | %13s | %-8s |\n' image command seconds "peak RSS MiB" "< ${rss_goal_mib} MiB"
  echo '| --------------------------- | ---------------------------------------- | -------: | ------------: | -------- |'
  printf '%s\n' "${mem_rows[@]}"
  echo
  for fmt in monolithicSparse streamOptimized; do
    echo "cmp $fmt: clonectl output vs qemu-img output: ${verified[$fmt]:-not checked}"
  done
}

# ----------------------------------------------------------------- part: clone

clone_dir=$bench_dir/clone  # the cached parents (clonectl clone makes them read-only)
golden=$clone_dir/golden-1G.vmdk
golden_raw=$clone_dir/golden-1G.raw
golden_tib=$clone_dir/golden-1T.vmdk
golden_64=$clone_dir/golden-64G.vmdk
flat_name="golden-1G-flat.vmdk"  # what a mount of a clone of golden-1G.vmdk presents
gib=$((1 << 30))
ft_bytes=$((ft_mib << 20))
space_ios=10000  # 4 KiB writes in the space test: 40,960,000 guest bytes

# Wall clock in microseconds, from bash itself (no fork to skew a few-ms measurement).
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t)); }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }
vmhwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
run_or_die() {  # LABEL CMD...: CMD's output to $log; on failure show it and stop
  local label=$1; shift
  if ! "$@" >"$log" 2>&1; then
    echo "bench: $label failed: $*" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
}

clone_seq=0
# new_clone PARENT: a fresh linked clone; sets clone_path, clone_ms (wall) and
# clone_self_ms (what clonectl prints).
new_clone() {
  clone_seq=$((clone_seq + 1))
  clone_path=$out_dir/clones/c$clone_seq
  mkdir -p "$out_dir/clones"
  local t0 t1
  t0=$(now_us)
  run_or_die "clonectl clone" "$clonectl" clone "$1" "$clone_path" --linked
  t1=$(now_us)
  clone_ms=$(ms_between "$t0" "$t1")
  clone_self_ms=$(sed -n 's/.* in \([0-9.]*\) ms$/\1/p' "$log" | head -n 1)
}

# mount_clone CLONE: mounts it under $mnt_dir; sets mnt, daemon_pid and mount_ms (from
# starting clonefs until it returns: it returns once the mount is ready).
mount_clone() {
  mnt=$mnt_dir/$(basename "$1")
  mkdir -p "$mnt"
  local t0 t1
  t0=$(now_us)
  live_mounts[$mnt]=0
  run_or_die "clonefs" "$clonefs" "$1" "$mnt"
  t1=$(now_us)
  mount_ms=$(ms_between "$t0" "$t1")
  daemon_pid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' \
    "$1/.clonefs/lock.owner")
  live_mounts[$mnt]=$daemon_pid
}

# unmount_clone MNT: fusermount3 -u, then waits for the daemon to flush and exit.
unmount_clone() {
  local m=$1 p=${live_mounts[$1]} i
  for ((i = 0; i < 50; i++)); do
    fusermount3 -u "$m" 2>/dev/null && break
    sleep 0.1  # EBUSY for a moment after a job closed the file
  done
  ((i < 50)) || die "fusermount3 -u $m keeps failing"
  wait_gone "$p" 120 || die "clonefs daemon $p did not exit within 120 s of the unmount"
  unset "live_mounts[$m]"
  rmdir "$m"
}

# qsd_start OVERLAY NAME: exports OVERLAY (qcow2) at $mnt_dir/NAME.img; sets qsd_pid and
# qsd_file.
qsd_start() {
  qsd_file=$mnt_dir/$2.img
  : >"$qsd_file"  # the FUSE export's mountpoint is a regular file
  qemu-storage-daemon \
    --blockdev "driver=file,filename=$1,node-name=file0" \
    --blockdev driver=qcow2,file=file0,node-name=ov0 \
    --export "type=fuse,id=exp0,node-name=ov0,mountpoint=$qsd_file,writable=on" \
    >"$out_dir/qsd-$2.log" 2>&1 &
  qsd_pid=$!
  live_qsd[$qsd_pid]=$qsd_file
  local i
  for ((i = 0; i < 200; i++)); do
    mounted "$qsd_file" && return 0
    kill -0 "$qsd_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$out_dir/qsd-$2.log" >&2
  die "qemu-storage-daemon did not export $qsd_file"
}
qsd_stop() {  # PID
  local f=${live_qsd[$1]}
  kill -TERM "$1"
  wait "$1" || true
  unset "live_qsd[$1]"
  if mounted "$f"; then fusermount3 -u -z "$f"; fi
  rm -f "$f"
}

# fio_run TEST FILE ARGS...: one fio job (psync, QD1, O_DIRECT) after dropping the page
# cache; sets r_iops w_iops r_kibs, and w_ios (writes done). With $profile_test =
# TEST and $profile_pid set, perf records that pid during the job.
profile_test=""
profile_pid=0
fio_run() {
  local test=$1 file=$2 perf_pid=0; shift 2
  local json=$out_dir/fio-$test.json
  cold
  if [ "$test" = "$profile_test" ] && ((profile_pid > 0)); then
    rm -f "$bench_dir/perf-$test.data" "$bench_dir/perf-$test.data.old"
    perf record -g -p "$profile_pid" -o "$bench_dir/perf-$test.data" >"$out_dir/perf.log" 2>&1 &
    perf_pid=$!
    live_perf[$perf_pid]=1
    sleep 0.5  # let perf attach before the job starts
  fi
  if ! fio --name="$test" --filename="$file" --ioengine=psync --iodepth=1 --direct=1 \
      --numjobs=1 --fallocate=none --output-format=json --output="$json" "$@" >"$log" 2>&1; then
    echo "bench: fio $test on $file failed" >&2
    cat "$log" "$json" 2>/dev/null | tail -n 20 >&2
    exit 1
  fi
  if ((perf_pid > 0)); then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    unset "live_perf[$perf_pid]"
  fi
  read -r r_iops w_iops r_kibs w_ios < <(python3 - "$json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.index("{"):])["jobs"][0]  # fio may print notes before the JSON
if job.get("error"):
    sys.exit(f"fio job error {job['error']}")
r, w = job["read"], job["write"]
print(f"{r['iops']:.1f} {w['iops']:.1f} {r['bw']} {w['total_ios']}")
PY
  )
}

declare -A vals=()     # TEST,TARGET -> values of the rounds
declare -A rss_max=()  # what -> peak VmHWM KiB seen
record() { vals[$1,$2]+="$3 "; }
note_rss() {  # WHAT KIB
  local old=${rss_max[$1]:-0}
  (($2 > old)) && rss_max[$1]=$2
  return 0
}

# target_up TARGET MODE (read | write): a fresh target holding the parent's data; sets
# tfile (the file fio uses), and profile_pid when profiling a clonefs target.
target_up() {
  case $1 in
    clonefs)
      new_clone "$golden"
      mount_clone "$clone_path"
      tfile=$mnt/$flat_name
      if [ -n "$profile_test" ]; then profile_pid=$daemon_pid; fi
      ;;
    raw)
      if [ "$2" = read ]; then
        tfile=$golden_raw
      else
        tfile=$out_dir/raw-copy.raw
        cp --reflink=never "$golden_raw" "$tfile"  # a real copy: writes land in place
      fi
      ;;
    qsd)
      qemu-img create -q -f qcow2 -b "$golden" -F vmdk "$out_dir/overlay.qcow2"
      qsd_start "$out_dir/overlay.qcow2" overlay
      tfile=$qsd_file
      ;;
  esac
}
target_down() {  # TARGET GROUP: records the daemon's peak RSS, then removes the target
  case $1 in
    clonefs)
      local kib
      kib=$(vmhwm_kib "$daemon_pid")
      note_rss "clonefs 1 GiB $2" "$kib"
      note_rss "clonefs 1 GiB" "$kib"
      unmount_clone "$mnt"
      rm -rf "$clone_path"
      profile_pid=0
      ;;
    raw) [ "$tfile" = "$golden_raw" ] || rm -f "$tfile" ;;
    qsd)
      note_rss "qsd 1 GiB" "$(vmhwm_kib "$qsd_pid")"
      qsd_stop "$qsd_pid"
      rm -f "$out_dir/overlay.qcow2"
      ;;
  esac
}

# The three groups of jobs; each fio job records its metric for the target.
t=${fio_seconds}
group_reads() {  # TARGET
  local ro=()
  if [ "$1" = raw ]; then ro=(--readonly); fi
  target_up "$1" read
  # One pass, not time based: a second pass would read the parent from the page cache
  # through clonefs and qsd (their reads of it are buffered) but from the disk for raw.
  fio_run seqread "$tfile" "${ro[@]}" --rw=read --bs=1m --size=1g --runtime=60
  record seqread "$1" "$(awk -v k="$r_kibs" 'BEGIN { printf "%.1f", k / 1024 }')"
  fio_run randread "$tfile" "${ro[@]}" --rw=randread --bs=4k --size=1g --runtime="$t" --time_based
  record randread "$1" "$r_iops"
  target_down "$1" reads
}
group_write() {  # TARGET
  target_up "$1" write
  fio_run firsttouch "$tfile" --rw=randwrite --bs=4k --size="$ft_bytes" --end_fsync=1 --runtime=60
  record firsttouch "$1" "$w_iops"
  ((w_ios >= ft_bytes / 4096)) ||
    echo "  NOTE: $1 first-touch stopped at the 60 s cap after $w_ios of $((ft_bytes / 4096)) blocks"
  # One pass (each block once): a second would come from the page cache for clonefs.
  fio_run readafter "$tfile" --rw=randread --bs=4k --size="$ft_bytes" --runtime=60
  record readafter "$1" "$r_iops"
  target_down "$1" write
}
group_mix() {  # TARGET
  target_up "$1" write
  fio_run mix "$tfile" --rw=randrw --rwmixread=70 --bs=4k --size=1g --runtime="$t" --time_based
  record mix "$1" "$(awk -v r="$r_iops" -v w="$w_iops" 'BEGIN { printf "%.1f", r + w }')"
  target_down "$1" mix
}
group_of() {
  case $1 in
    seqread | randread) echo reads ;;
    firsttouch | readafter) echo write ;;
    mix) echo mix ;;
  esac
}

# clone_images: the cached parents.
clone_images() {
  say "Clone images (cached in $clone_dir)"
  mkdir -p "$clone_dir"
  local need=$((3 * gib)) avail
  [ -f "$golden" ] || need=$((need + gib))
  [ -f "$golden_raw" ] || need=$((need + gib))
  avail=$(( $(df -Pk "$bench_dir" | awk 'NR == 2 { print $4 }') * 1024 ))
  ((avail > need)) || die "$bench_dir needs about $((need >> 30)) GiB free, has $((avail >> 30)) GiB"

  local recipe="head -c 1G /dev/urandom > x.raw; qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse x.raw golden-1G.vmdk"
  if ! cached "$golden" "$recipe"; then
    echo "making $golden (1 GiB of /dev/urandom, qemu-img convert)"
    rm -f "$golden" "$golden.recipe" "$golden_raw" "$golden_raw.recipe"
    head -c 1G /dev/urandom >"$clone_dir/x.raw"
    qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$clone_dir/x.raw" "$golden.tmp.vmdk"
    rm -f "$clone_dir/x.raw"
    mv "$golden.tmp.vmdk" "$golden"
    mark "$golden" "$recipe"
  fi
  local recipe_raw="qemu-img convert -f vmdk -O raw golden-1G.vmdk golden-1G.raw ($recipe)"
  if ! cached "$golden_raw" "$recipe_raw"; then
    echo "making $golden_raw (qemu-img convert -O raw)"
    rm -f "$golden_raw" "$golden_raw.recipe"
    qemu-img convert -f vmdk -O raw "$golden" "$golden_raw.tmp"
    mv "$golden_raw.tmp" "$golden_raw"
    mark "$golden_raw" "$recipe_raw"
  fi
  local tib_offsets=(0 256G 512G $(( (1 << 40) - (1 << 20) )))
  local recipe_tib="qemu-img create -f vmdk 1T; qemu-io write -P 0x22 at ${tib_offsets[*]} 1M"
  if ! cached "$golden_tib" "$recipe_tib"; then
    echo "making $golden_tib (qemu-img create + qemu-io)"
    rm -f "$golden_tib" "$golden_tib.recipe"
    qemu-img create -q -f vmdk "$golden_tib.tmp.vmdk" 1T
    local o
    for o in "${tib_offsets[@]}"; do
      qemu-io -f vmdk -c "write -P 0x22 $o 1M" "$golden_tib.tmp.vmdk" >/dev/null
    done
    mv "$golden_tib.tmp.vmdk" "$golden_tib"
    mark "$golden_tib" "$recipe_tib"
  fi
  local recipe_64="qemu-img create -f vmdk 64G"
  if ! cached "$golden_64" "$recipe_64"; then
    echo "making $golden_64 (qemu-img create)"
    rm -f "$golden_64" "$golden_64.recipe"
    qemu-img create -q -f vmdk "$golden_64.tmp.vmdk" 64G
    mv "$golden_64.tmp.vmdk" "$golden_64"
    mark "$golden_64" "$recipe_64"
  fi
  local f
  for f in "$golden" "$golden_raw" "$golden_tib" "$golden_64"; do
    echo "$(basename "$f"): $(stat -c %s "$f") bytes, $(alloc_bytes "$f") allocated"
  done
}

# The table's rows: test, label, unit, goal text, awk condition on a = clonefs/raw and
# q = clonefs/qsd.
io_tests=(seqread randread firsttouch readafter mix)
declare -A io_label=(
  [seqread]="1 MiB seq read, MiB/s" [randread]="4 KiB rand read untouched, IOPS"
  [firsttouch]="4 KiB rand first-touch write+fsync, IOPS"
  [readafter]="4 KiB read-after-write, IOPS" [mix]="4 KiB rand 70/30 r/w, IOPS")
declare -A io_goal=(
  [seqread]=">= 0.6x raw" [randread]=">= 0.9x raw, >= 3x qsd" [firsttouch]=">= 2x qsd"
  [readafter]=">= 1.5x raw" [mix]=">= 1.5x raw")
declare -A io_cond=(
  [seqread]="a >= 0.6" [randread]="a >= 0.9 && q >= 3" [firsttouch]="q >= 2"
  [readafter]="a >= 1.5" [mix]="a >= 1.5")
goal_met() { awk -v a="$1" -v q="$2" "BEGIN { exit !($3) }"; }
yes_no() { if "$@"; then echo yes; else echo NO; fi; }
sz_label() { case $1 in 1G) echo "1 GiB" ;; 1T) echo "1 TiB" ;; *) echo "$1" ;; esac; }

clone_part() {
  say "Linked clones: clonefs against raw (no FUSE) and qemu-storage-daemon (qcow2 overlay)"
  echo "work dir:  $bench_dir, mounts under $mnt_dir; $runs round(s) of the fio jobs,"
  echo "           ${fio_seconds} s per time-based job, first-touch region ${ft_mib} MiB"
  clone_images

  # Sanity: the mounted clone presents the parent's bytes (a few MiB here and there).
  new_clone "$golden"
  mount_clone "$clone_path"
  local o
  for o in 0 300 777 1023; do
    cmp <(dd if="$mnt/$flat_name" bs=1M skip="$o" count=1 status=none) \
      <(dd if="$golden_raw" bs=1M skip="$o" count=1 status=none) ||
      die "the clone's $flat_name differs from $golden_raw at MiB $o (stale raw copy? delete $clone_dir)"
  done
  unmount_clone "$mnt"
  rm -rf "$clone_path"
  echo "check: a fresh clone presents the parent's bytes (MiB 0, 300, 777, 1023 compared)"

  # ------------------------------------------------------------------ I/O
  local all=(clonefs raw qsd) round k target g
  for ((round = 0; round < runs; round++)); do
    for g in reads write mix; do
      say "I/O round $((round + 1))/$runs: $g"
      for ((k = 0; k < 3; k++)); do
        target=${all[(round + k) % 3]}
        "group_$g" "$target"
        case $g in
          reads) printf '  %-8s seqread %8s MiB/s   randread %8s IOPS\n' "$target" \
                   "$(echo "${vals[seqread,$target]}" | awk '{ print $NF }')" \
                   "$(echo "${vals[randread,$target]}" | awk '{ print $NF }')" ;;
          write) printf '  %-8s firsttouch %8s IOPS   readafter %8s IOPS\n' "$target" \
                   "$(echo "${vals[firsttouch,$target]}" | awk '{ print $NF }')" \
                   "$(echo "${vals[readafter,$target]}" | awk '{ print $NF }')" ;;
          mix) printf '  %-8s mix %8s IOPS\n' "$target" \
                 "$(echo "${vals[mix,$target]}" | awk '{ print $NF }')" ;;
        esac
      done
    done
  done

  # ------------------------------------------------------------------ time
  say "Clone creation and mount time ($time_runs rounds, warm then cold page cache)"
  declare -A tms=()
  local sz parent i cache
  for sz in 1G 1T; do
    if [ "$sz" = 1G ]; then parent=$golden; else parent=$golden_tib; fi
    new_clone "$parent"; mount_clone "$clone_path"; unmount_clone "$mnt"; rm -rf "$clone_path"  # warm-up
    for ((i = 0; i < time_runs; i++)); do
      for cache in warm cold; do
        if [ "$cache" = cold ]; then
          ((can_drop)) || continue
          drop_caches
        fi
        new_clone "$parent"
        if [ "$cache" = cold ]; then drop_caches; fi
        mount_clone "$clone_path"
        unmount_clone "$mnt"
        rm -rf "$clone_path"
        tms[$sz,$cache,clone]+="$clone_ms "
        tms[$sz,$cache,self]+="${clone_self_ms:-0} "
        tms[$sz,$cache,mount]+="$mount_ms "
        printf '  %s %-4s clone %7s ms (clonectl says %s ms)   mount %7s ms\n' \
          "$sz" "$cache" "$clone_ms" "${clone_self_ms:-?}" "$mount_ms"
      done
    done
  done

  # ------------------------------------------------------------------ space
  say "Space: $space_ios random distinct 4 KiB writes over a 64 GiB clone"
  local guest=$((space_ios * 4096)) delta_b map_b meta_b space_ratio qcow_b qcow_ratio
  new_clone "$golden_64"
  mount_clone "$clone_path"
  fio_run space "$mnt/golden-64G-flat.vmdk" --rw=randwrite --bs=4k --size=64g \
    --io_size=$((space_ios * 4))k --end_fsync=1
  local space_iops=$w_iops
  note_rss "clonefs 64 GiB space test" "$(vmhwm_kib "$daemon_pid")"
  unmount_clone "$mnt"
  delta_b=$(du --block-size=1 "$clone_path/.clonefs/golden-64G.delta" | cut -f1)
  map_b=$(du --block-size=1 "$clone_path/.clonefs/golden-64G.map" | cut -f1)
  meta_b=$(du -s --block-size=1 "$clone_path/.clonefs" | cut -f1)
  space_ratio=$(awk -v b=$((delta_b + map_b)) -v g="$guest" 'BEGIN { printf "%.3f", b / g }')
  rm -rf "$clone_path"
  echo "  clonefs: delta $delta_b + map $map_b bytes = $((delta_b + map_b)) for $guest guest bytes: $space_ratio (whole .clonefs: $meta_b); $space_iops IOPS"
  qemu-img create -q -f qcow2 -b "$golden_64" -F vmdk "$out_dir/overlay64.qcow2"
  qsd_start "$out_dir/overlay64.qcow2" overlay64
  fio_run space-qsd "$qsd_file" --rw=randwrite --bs=4k --size=64g \
    --io_size=$((space_ios * 4))k --end_fsync=1
  local qsd_space_iops=$w_iops
  qsd_stop "$qsd_pid"
  qcow_b=$(du --block-size=1 "$out_dir/overlay64.qcow2" | cut -f1)
  qcow_ratio=$(awk -v b="$qcow_b" -v g="$guest" 'BEGIN { printf "%.3f", b / g }')
  rm -f "$out_dir/overlay64.qcow2"
  echo "  qsd qcow2 overlay: $qcow_b bytes: $qcow_ratio; $qsd_space_iops IOPS"

  # ------------------------------------------------------------------ summary
  say "Summary: linked clones"
  echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "fio psync, iodepth 1, O_DIRECT, 1 job, page cache dropped before each job; median of $runs round(s)."
  echo "raw = the parent converted to a raw file, no FUSE; qsd = $(qemu-storage-daemon --version | head -n 1 | awk '{ print $3 }'), qcow2 overlay, FUSE export."
  echo
  echo "| test | clonefs | raw | qsd | clonefs/raw | clonefs/qsd | goal | met? |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"
  local test c r q a qq met missed=()
  for test in "${io_tests[@]}"; do
    c=$(median <<<"${vals[$test,clonefs]}")
    r=$(median <<<"${vals[$test,raw]}")
    q=$(median <<<"${vals[$test,qsd]}")
    a=$(ratio "$c" "$r")
    qq=$(ratio "$c" "$q")
    met=$(yes_no goal_met "$a" "$qq" "${io_cond[$test]}")
    [ "$met" = yes ] || missed+=("$test")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "${io_label[$test]}" "$c" "$r" "$q" \
      "$a" "$qq" "${io_goal[$test]}" "$met"
  done
  echo
  local w1 w2
  echo "| timing / space / memory | value | goal | met? |"
  echo "| --- | --- | --- | --- |"
  for what in clone mount; do
    local goal=20
    [ "$what" = mount ] && goal=50
    w1=$(median <<<"${tms[1G,warm,$what]}")
    w2=$(median <<<"${tms[1T,warm,$what]}")
    for sz in 1G 1T; do
      local wv cv extra="" ok
      wv=$(median <<<"${tms[$sz,warm,$what]}")
      cv=$( ((can_drop)) && median <<<"${tms[$sz,cold,$what]}" || echo n/a)
      [ "$what" = clone ] && extra=", clonectl's own $(median <<<"${tms[$sz,warm,self]}") ms"
      ok=$(yes_no awk -v v="$wv" -v g="$goal" 'BEGIN { exit !(v <= g) }')
      if [ "$sz" = 1T ]; then
        # "the same at 1 TiB as at 1 GiB": within 5 ms or 1.5x of the 1 GiB median.
        ok=$(yes_no awk -v v="$wv" -v g="$goal" -v b="$w1" \
          'BEGIN { exit !(v <= g && (v <= b + 5 || v <= 1.5 * b)) }')
        extra+="; 1 TiB / 1 GiB = $(ratio "$w2" "$w1")"
      fi
      [ "$ok" = yes ] || missed+=("$what-$sz")
      local label="clone creation"
      [ "$what" = mount ] && label="mount"
      printf '| %s, %s parent | %s ms warm median (cold %s ms%s) | <= %s ms%s | %s |\n' "$label" \
        "$(sz_label "$sz")" "$wv" "$cv" "$extra" "$goal" "$( [ "$sz" = 1T ] && echo ', same as 1 GiB')" "$ok"
    done
  done
  printf '| host bytes per guest byte (10,000 x 4 KiB over 64 GiB) | %s (delta %s + map %s B; qcow2 via qsd: %s) | <= 1.1 | %s |\n' \
    "$space_ratio" "$delta_b" "$map_b" "$qcow_ratio" \
    "$(yes_no awk -v v="$space_ratio" 'BEGIN { exit !(v <= 1.1) }')"
  local rss_c=${rss_max[clonefs 1 GiB]:-0}
  local rss_ok
  rss_ok=$(yes_no awk -v v="$rss_c" 'BEGIN { exit !(v <= 16 * 1024) }')
  [ "$rss_ok" = yes ] || missed+=(rss)
  printf '| clonefs daemon peak RSS, 1 GiB clone | %s MiB (reads %s, write %s, mix %s; 64 GiB space test %s; qsd %s) | <= 16 MiB | %s |\n' \
    "$(mib "$rss_c")" "$(mib "${rss_max[clonefs 1 GiB reads]:-0}")" \
    "$(mib "${rss_max[clonefs 1 GiB write]:-0}")" "$(mib "${rss_max[clonefs 1 GiB mix]:-0}")" \
    "$(mib "${rss_max[clonefs 64 GiB space test]:-0}")" "$(mib "${rss_max[qsd 1 GiB]:-0}")" "$rss_ok"
  echo
  if ((${#missed[@]} == 0)); then
    echo "All goals met."
  else
    echo "Goals missed: ${missed[*]}"
  fi

  # ------------------------------------------------------------------ profile
  [ "$bench_perf" != 0 ] || return 0
  for test in "${missed[@]}"; do
    g=$(group_of "$test")
    [ -n "$g" ] || continue  # not an I/O test
    say "Profile: clonefs daemon during $test (perf record -g -p PID)"
    profile_test=$test
    "group_$g" clonefs
    profile_test=""
    echo "  $test this run (perf attached): $(echo "${vals[$test,clonefs]}" | awk '{ print $NF }')"
    if [ -s "$bench_dir/perf-$test.data" ]; then
      perf report -i "$bench_dir/perf-$test.data" --no-children --stdio \
        >"$bench_dir/perf-$test.txt" 2>/dev/null || true
      perf report -i "$bench_dir/perf-$test.data" --no-children --stdio -g none \
        --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep . | head -n 30 || true
      echo "  (call graphs: $bench_dir/perf-$test.txt; data: $bench_dir/perf-$test.data)"
    else
      echo "  perf recorded nothing (see $out_dir/perf.log)"; cat "$out_dir/perf.log" || true
    fi
  done
}

# ----------------------------------------------------------------- part: full

full_dir=$bench_dir/full  # the cached source chain

full_images() {
  say "Full clone source (cached in $full_dir)"
  mkdir -p "$full_dir"
  local base=$full_dir/base-1G.vmdk top=$full_dir/top-1G.vmdk
  # The recipe names what filled the file system, with its size, so that a changed /usr
  # makes a new image rather than a silently different one.
  local usage recipe_base recipe_top
  usage=$(du -sb /usr/include /usr/bin | awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1 }')
  recipe_base="truncate -s 1G; mkfs.ext4 -q -F -E root_owner=0:0 -d (cp -al /usr/include /usr/bin: $usage); qemu-img convert -O vmdk"
  if ! cached "$base" "$recipe_base"; then
    echo "making $base (mkfs.ext4 -d, qemu-img convert)"
    rm -rf "$base" "$base.recipe" "$top" "$top.recipe" "$full_dir/stage" "$full_dir/base.raw"
    mkdir "$full_dir/stage"
    cp -al /usr/include /usr/bin "$full_dir/stage/"
    truncate -s 1G "$full_dir/base.raw"
    mkfs.ext4 -q -F -E root_owner=0:0 -d "$full_dir/stage" "$full_dir/base.raw"
    rm -rf "$full_dir/stage"
    qemu-img convert -f raw -O vmdk "$full_dir/base.raw" "$base.tmp.vmdk"
    rm -f "$full_dir/base.raw"
    mv "$base.tmp.vmdk" "$base"
    mark "$base" "$recipe_base"
  fi
  # 600 writes of 4 KiB to 256 KiB, pattern bytes 1-254, at 4 KiB-aligned places drawn by
  # awk's generator seeded with 7 (the same places on every machine with the same awk).
  recipe_top="qemu-img create -b base-1G.vmdk; qemu-io 600 seeded writes (awk srand 7) [$recipe_base]"
  if ! cached "$top" "$recipe_top"; then
    echo "making $top (qemu-img create -b, qemu-io)"
    rm -f "$top" "$top.recipe"
    qemu-img create -q -f vmdk -b base-1G.vmdk -F vmdk "$top.tmp.vmdk"
    awk 'BEGIN {
      srand(7); split("4096 8192 65536 131072 262144", lens, " ")
      for (i = 0; i < 600; i++) {
        off = int(rand() * (262144 - 64)) * 4096
        printf "-c\nwrite -P %d %d %d\n", 1 + int(rand() * 254), off, lens[1 + int(rand() * 5)]
      }
    }' | xargs -d '\n' qemu-io -f vmdk "$top.tmp.vmdk" >/dev/null
    # The child names its parent relatively, so it may be renamed in place.
    mv "$top.tmp.vmdk" "$top"
    mark "$top" "$recipe_top"
  fi
  full_src=$top
  "$clonectl" inspect "$top" | sed -n 's/^allocated: */allocated (both links merged): /p'
  echo "base-1G.vmdk: $(stat -c %s "$base") bytes; top-1G.vmdk: $(stat -c %s "$top") bytes"
}

full_part() {
  say "Full clone: clonectl clone --full against qemu-img convert -O vmdk"
  full_images
  local gib=$((1 << 30))
  local tools=(clonectl qemu-default) tool round k out
  ((full_wb)) && tools+=(qemu-wb)
  if ((can_drop == 0)); then echo "NOTE: page cache not dropped (not root?): warm runs"; fi
  declare -A ftimes=() falloc=()
  # run_full TOOL: one timed run into $out_dir; sets $secs and $out (the VMDK written).
  run_full() {
    rm -rf "$out_dir/full-clone" "$out_dir/full-qemu.vmdk"
    cold
    case $1 in
      clonectl)
        timed "clonectl clone --full" "$clonectl" clone "$full_src" "$out_dir/full-clone" --full
        out=$out_dir/full-clone/top-1G.vmdk ;;
      qemu-default)
        timed "qemu-img convert" qemu-img convert -f vmdk -O vmdk "$full_src" "$out_dir/full-qemu.vmdk"
        out=$out_dir/full-qemu.vmdk ;;
      qemu-wb)
        timed "qemu-img convert -t writeback" qemu-img convert -t writeback -f vmdk -O vmdk \
          "$full_src" "$out_dir/full-qemu.vmdk"
        out=$out_dir/full-qemu.vmdk ;;
    esac
  }
  for ((round = 0; round < runs; round++)); do
    for ((k = 0; k < ${#tools[@]}; k++)); do
      tool=${tools[(round + k) % ${#tools[@]}]}
      run_full "$tool"
      ftimes[$tool]+="$secs "
      falloc[$tool]=$(alloc_bytes "$out")
      printf '  run %d  %-13s %7.2f s  %6s MiB peak RSS  %s bytes allocated\n' "$((round + 1))" \
        "$tool" "$secs" "$(mib "$rss_kib")" "${falloc[$tool]}"
    done
  done

  # The outputs: clonectl's must be a clean, independent copy equal to the source and to
  # qemu-img's.
  local verdict=identical
  rm -rf "$out_dir/full-clone" "$out_dir/full-qemu.vmdk"
  run_or_die "clonectl clone --full" "$clonectl" clone "$full_src" "$out_dir/full-clone" --full
  run_or_die "qemu-img convert" qemu-img convert -f vmdk -O vmdk "$full_src" "$out_dir/full-qemu.vmdk"
  local mine=$out_dir/full-clone/top-1G.vmdk
  if ! qemu-img check -f vmdk "$mine" >"$log" 2>&1; then
    verdict="qemu-img check FAILED"; cat "$log"
  elif ! qemu-img compare -f vmdk -F vmdk "$full_src" "$mine" >"$log" 2>&1; then
    verdict="DIFFERS from the source"; cat "$log"
  elif ! qemu-img compare -f vmdk -F vmdk "$out_dir/full-qemu.vmdk" "$mine" >"$log" 2>&1; then
    verdict="DIFFERS from qemu-img's output"; cat "$log"
  fi
  echo "  check: clonectl's output: $verdict (qemu-img check, compare with the source and with qemu-img's)"
  [ "$verdict" = identical ] || failed=1
  rm -rf "$out_dir/full-clone" "$out_dir/full-qemu.vmdk"

  say "Summary: full clone"
  echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), $(qemu-img --version | head -n 1), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Source: 1 GiB chain (ext4 base + child with 600 writes), $(basename "$full_src"). Median of $runs run(s), page cache $( ((can_drop)) && echo dropped || echo NOT dropped ) before each."
  echo "MB/s = virtual bytes / s / 10^6. ratio = qemu-img s / clonectl s (>= 1: clonectl at least as fast)."
  echo
  echo "| tool | median s | MB/s | ratio | output allocated bytes |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  local c q
  c=$(median <<<"${ftimes[clonectl]}")
  for tool in "${tools[@]}"; do
    q=$(median <<<"${ftimes[$tool]}")
    printf '| %s | %s | %s | %s | %s |\n' "$tool" "$q" \
      "$(awk -v b="$gib" -v s="$q" 'BEGIN { printf "%.0f", b / s / 1e6 }')" \
      "$( [ "$tool" = clonectl ] && echo "-" || ratio "$q" "$c")" "${falloc[$tool]}"
  done
  echo
  local goal
  goal=$(yes_no awk -v q="$(median <<<"${ftimes[qemu-default]}")" -v c="$c" 'BEGIN { exit !(q / c >= 1) }')
  echo "Goal: clonectl --full at least as fast as qemu-img convert -O vmdk (default): $goal"
}

# ------------------------------------------------------------------------ main

if want export; then export_part; fi
if want clone; then clone_part; fi
if want full; then full_part; fi
if [ "$part" = all ]; then BUILD_DIR=$build_dir bash scripts/bench-chain.sh || failed=1; fi

if ((failed)); then
  echo "bench: FAILED: an output differs (see above)" >&2
  exit 1
fi
