#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Seeds a libFuzzer corpus directory (in the build tree) before a fuzz test runs.
# Usage: seed_corpus.sh <corpus-dir> <max-bytes> <source>...
# Each source is a directory (searched recursively) or a file; files are copied flat into
# the corpus, `.gz` files decompressed, `.md` files and files over <max-bytes> skipped.
# Sources that do not exist are skipped (the shared samples may be absent).
set -eu
out=$1
max=$2
shift 2
mkdir -p "$out"
n=0
for src in "$@"; do
  [ -e "$src" ] || continue
  find "$src" -type f ! -name '*.md' | sort | while IFS= read -r f; do
    rel=$(printf '%s' "${f#"$src"}" | tr '/' '_' | sed 's/^_//')
    [ -n "$rel" ] || rel=$(basename "$f")
    tmp="$out/.seed.tmp"
    case "$f" in
      *.gz) gzip -dc "$f" | head -c $((max + 1)) > "$tmp" || true
            rel=${rel%.gz} ;;
      *) head -c $((max + 1)) "$f" > "$tmp" ;;
    esac
    if [ "$(wc -c < "$tmp")" -gt "$max" ]; then
      rm -f "$tmp"
    else
      mv "$tmp" "$out/seed-$rel"
    fi
  done
done
echo "corpus $out: $(find "$out" -type f | wc -l) files"
