// SPDX-License-Identifier: Apache-2.0
#pragma once

// Writes a whole virtual disk as a sparse raw file. Holes in the merged allocation map
// are skipped, and so are all-zero 4 KiB blocks inside allocated data (as
// `qemu-img convert` does), so the output holds data only where the disk does.
//
// The output is built in a temporary file beside `out_path`, made durable, and renamed
// into place without replacing anything: an interrupted or failed export leaves no
// output and no temporary file.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/storage.h"
#include "vmdk/disk.h"

namespace tools {

struct ExportOptions {
  // Worker threads reading and writing chunks in parallel (inflating compressed grains
  // is CPU-bound, so this scales stream exports with cores).
  unsigned threads = 2;
  uint64_t chunk_bytes = 4 << 20;
  // Called from the calling thread about every 100 ms with the virtual bytes done.
  std::function<void(uint64_t done_bytes)> progress;
  // Set (e.g. from a signal handler) to stop early; the export then fails with ECANCELED.
  const std::atomic<bool>* cancel = nullptr;
};

struct ExportStats {
  uint64_t capacity_bytes = 0;
  uint64_t written_bytes = 0;  // bytes actually written (non-zero data)
};

common::Result<ExportStats> ExportRaw(const vmdk::Disk& disk, common::Storage& storage,
                                      const std::string& out_path, const ExportOptions& options);

}  // namespace tools
