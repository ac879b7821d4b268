// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/raw_export.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <mutex>

#include "common/copy_buffer.h"
#include "common/worker_pool.h"

namespace tools {
namespace {

using common::Error;
using common::Result;
using common::Status;

// Granularity of zero detection in allocated data, as qemu-img convert's default -S.
constexpr size_t kZeroBlockBytes = 4096;

// Writes the non-zero 4 KiB blocks of `data` (disk bytes starting at disk_offset).
Result<uint64_t> WriteNonZero(common::File& out, uint64_t disk_offset,
                              std::span<const std::byte> data) {
  uint64_t written = 0;
  size_t run_start = 0, run_len = 0;
  for (size_t at = 0; at < data.size(); at += kZeroBlockBytes) {
    size_t n = std::min(kZeroBlockBytes, data.size() - at);
    if (common::IsAllZero(data.subspan(at, n))) {
      if (run_len) {
        BOOST_OUTCOME_TRYV(out.WriteAt(disk_offset + run_start, data.subspan(run_start, run_len)));
        written += run_len;
        run_len = 0;
      }
      continue;
    }
    if (run_len == 0) run_start = at;
    run_len += n;
  }
  if (run_len) {
    BOOST_OUTCOME_TRYV(out.WriteAt(disk_offset + run_start, data.subspan(run_start, run_len)));
    written += run_len;
  }
  return written;
}

// Copies chunk [start, end) of the disk: data runs are read and written, holes skipped.
Result<uint64_t> CopyChunk(const vmdk::Disk& disk, common::File& out, uint64_t start, uint64_t end,
                           std::span<std::byte> buffer) {
  uint64_t written = 0;
  uint64_t pos = start;
  while (pos < end) {
    BOOST_OUTCOME_TRY(m, disk.Map(pos, end - pos));
    if (m.state == vmdk::BlockState::kData) {
      auto part = buffer.first(m.length_bytes);
      BOOST_OUTCOME_TRYV(disk.Read(pos, part));
      BOOST_OUTCOME_TRY(n, WriteNonZero(out, pos, part));
      written += n;
    }
    pos += m.length_bytes;
  }
  return written;
}

std::string TempPathFor(const std::string& out_path) {
  std::filesystem::path p(out_path);
  return (p.parent_path() / fmt::format(".{}.part-{}", p.filename().string(), ::getpid()))
      .string();
}

}  // namespace

Result<ExportStats> ExportRaw(const vmdk::Disk& disk, common::Storage& storage,
                              const std::string& out_path, const ExportOptions& options) {
  if (storage.Stat(out_path)) return Error(EEXIST, "{}: already exists (not overwritten)", out_path);
  const std::string temp_path = TempPathFor(out_path);
  BOOST_OUTCOME_TRY(out, storage.CreateExclusive(temp_path));
  ExportStats stats;
  stats.capacity_bytes = disk.capacity_bytes();

  // Everything below either succeeds and renames the file into place or removes it.
  auto fail = [&](Status status) -> Result<ExportStats> {
    out.reset();
    (void)storage.Remove(temp_path);
    return status;
  };
  if (Status s = out->Truncate(stats.capacity_bytes); !s.ok()) return fail(s);

  const uint64_t chunk =
      (std::max<uint64_t>(options.chunk_bytes, kZeroBlockBytes) + kZeroBlockBytes - 1) /
      kZeroBlockBytes * kZeroBlockBytes;
  const uint64_t chunks = (stats.capacity_bytes + chunk - 1) / chunk;
  std::atomic<uint64_t> next_chunk{0}, done_bytes{0}, written_bytes{0};
  std::mutex mutex;
  Status first_error;  // guarded by mutex

  auto worker = [&] {
    common::AlignedBuffer buffer(chunk);
    if (!buffer.ok()) {
      std::lock_guard lock(mutex);
      if (first_error.ok()) first_error = Error(ENOMEM, "{}: no memory for a copy buffer", out_path);
    }
    while (true) {
      if (options.cancel && options.cancel->load()) {
        std::lock_guard lock(mutex);
        if (first_error.ok()) first_error = Error(ECANCELED, "{}: export interrupted", out_path);
      }
      {
        std::lock_guard lock(mutex);
        if (!first_error.ok()) break;
      }
      uint64_t index = next_chunk++;
      if (index >= chunks) break;
      uint64_t start = index * chunk;
      uint64_t end = std::min(start + chunk, stats.capacity_bytes);
      auto copied = CopyChunk(disk, *out, start, end, buffer.span());
      if (!copied) {
        std::lock_guard lock(mutex);
        if (first_error.ok()) first_error = copied.error();
        break;
      }
      written_bytes += copied.value();
      done_bytes += end - start;
    }
  };
  common::RunWorkers(options.threads, worker, [&] {
    if (options.progress) options.progress(done_bytes.load());
  });
  if (!first_error.ok()) return fail(first_error);

  // Durable before it becomes visible under its real name.
  if (Status s = out->Sync(); !s.ok()) return fail(s);
  out.reset();
  if (Status s = storage.Rename(temp_path, out_path, /*no_replace=*/true); !s.ok()) {
    (void)storage.Remove(temp_path);
    return s;
  }
  stats.written_bytes = written_bytes.load();
  return stats;
}

}  // namespace tools
