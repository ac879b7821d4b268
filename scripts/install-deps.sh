#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every build, test and benchmark dependency of clonefs from Debian 12's
# packages. Non-interactive and idempotent: packages already present are skipped, and
# apt-get is not touched at all when nothing is missing.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  # libraries (see docs/ and STYLE.md section 8 for why each)
  libboost-dev libfuse3-dev libxxhash-dev libcli11-dev nlohmann-json3-dev
  libfmt-dev libspdlog-dev zlib1g-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  qemu-utils fio fuse3 e2fsprogs util-linux xxd python3 time
  # bench.sh's clone part: qemu-storage-daemon (qemu-system-common), perf
  qemu-system-common qemu-system-x86 linux-perf
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
