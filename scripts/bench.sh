#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks `clonectl export` against `qemu-img convert -O raw`, and clonectl's memory.
#
# What it measures, side by side in one run:
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
# Usage: scripts/bench.sh
#   BENCH_DIR   work dir holding the cached images   (default /var/tmp/clonefs-bench)
#   RUNS        timed runs per tool, format and cache (default 3)
#   BENCH_SIZE  virtual size of the speed-test disk  (default 4G; e.g. 1G for a smoke run)
#   BENCH_QEMU_DEFAULT=0  skip the qemu-img default-cache ('unsafe') runs
#   CLONECTL    path to a clonectl binary to use instead of building build/release
# Needs root for drop_caches (without it the cold-cache rows are skipped). Takes about
# 10 minutes on 2 cores (plus about 1.5 minutes the first time, to make the images).
# Exits non-zero if an output differs or a command fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bench_dir=${BENCH_DIR:-/var/tmp/clonefs-bench}
runs=${RUNS:-3}
size=${BENCH_SIZE:-4G}
qemu_default=${BENCH_QEMU_DEFAULT:-1}
rss_goal_mib=64

die() { echo "bench: $*" >&2; exit 1; }
say() { printf '\n=== %s\n' "$*"; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$runs'"
[[ $size =~ ^[1-9][0-9]*G$ ]] || die "BENCH_SIZE must be whole GiB like 4G, not '$size'"

bash scripts/install-deps.sh
for tool in fio qemu-img qemu-io cmp dd truncate numfmt flock awk /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh should install it)"
done

if [ -n "${CLONECTL:-}" ]; then
  clonectl=$CLONECTL
else
  # Incremental: builds clonectl if it is missing, refreshes it if the sources changed.
  if [ ! -f build/release/build.ninja ]; then
    cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build build/release --target clonectl >/dev/null
  clonectl=$root/build/release/tools/clonectl
fi
[ -x "$clonectl" ] || die "$clonectl is not executable"

mkdir -p "$bench_dir"
exec 9>"$bench_dir/.lock"
flock -n 9 || die "another bench.sh is using $bench_dir"
out_dir=$bench_dir/out
log=$bench_dir/last-command.log
rm -rf "$out_dir"
mkdir -p "$out_dir"
cleanup() { rm -rf "$out_dir"; }
trap cleanup EXIT

# Benchmark a private copy, so a concurrent rebuild of build/release cannot swap the
# binary in the middle of the runs.
cp "$clonectl" "$out_dir/clonectl"
clonectl_src=$clonectl
clonectl=$out_dir/clonectl

can_drop=0
if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then can_drop=1; fi

# ---------------------------------------------------------------------------- helpers

size_bytes=$(( ${size%G} * 1024 * 1024 * 1024 ))
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
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

say "clonefs benchmark"
echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine:   $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "qemu-img:  $(qemu-img --version | head -n 1)"
echo "clonectl:  $clonectl_src (git $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown))"
qemu_default_cache=$(qemu-img --help | grep -o "'[a-z]*' (default for convert)" | cut -d"'" -f2 || true)
echo "qemu-img convert's default output cache mode: ${qemu_default_cache:-unknown} (-t writeback flushes on close)"
echo "work dir:  $bench_dir, $runs run(s) per tool, format and cache, disk $size"
if ((can_drop == 0)); then echo "NOTE: cannot write /proc/sys/vm/drop_caches (not root?): cold-cache runs skipped"; fi

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

say "Summary"
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

if ((failed)); then
  echo "bench: FAILED: an output differs (see above)" >&2
  exit 1
fi
