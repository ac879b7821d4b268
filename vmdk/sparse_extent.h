// SPDX-License-Identifier: Apache-2.0
#pragma once

// Grain-addressed extents: hosted sparse (KDMV: monolithicSparse, twoGbMaxExtentSparse,
// streamOptimized with zlib grains) and ESXi COWD (vmfsSparse). Both are a grain
// directory of grain tables of grain-table entries (GTEs) pointing at grains; they differ
// only in header layout, table size and grain encoding, captured in GrainGeometry.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/storage.h"
#include "vmdk/extent.h"
#include "vmdk/grain_table_cache.h"
#include "vmdk/sparse_header.h"

namespace vmdk {

struct GrainGeometry {
  uint64_t header_capacity_bytes = 0;  // as the header says; grains past it read as zeros
  uint64_t grain_bytes = 0;
  uint32_t gtes_per_gt = 0;
  uint64_t gd_offset_bytes = 0;
  uint64_t gd_entries = 0;
  bool zeroed_gte = false;    // GTE 1 means "zeroed grain" (masks the parent)
  bool compressed = false;    // GTEs point at grain markers of zlib streams
  uint64_t first_data_byte = 0;  // nothing the tables point at lies before this
};

// Reads the effective hosted-sparse header of `file`: the one at sector 0, or for a
// stream whose header says GD_AT_END, the footer (validated with its marker and the
// end-of-stream marker, as QEMU does). Errors name the file.
Result<SparseHeader> ReadHostedHeader(const common::File& file, uint64_t file_size);

class SparseExtent final : public Extent {
 public:
  // Opens the sparse extent in `file` (KDMV or COWD, told apart by magic; SESparse is
  // refused with ENOTSUP) as an extent of extent_size_bytes (from the descriptor line).
  // Checks the header, the grain directory's location and every directory entry
  // against the file size; grain tables are checked when first loaded.
  static Result<std::unique_ptr<SparseExtent>> Open(std::unique_ptr<common::File> file,
                                                    uint64_t extent_size_bytes);

  uint64_t size_bytes() const override { return size_bytes_; }
  Result<Mapping> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const override;
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override;
  ExtentDetails Details() const override { return details_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Loads every grain table once and checks each entry (a full structure check with no
  // grain data read).
  Status CheckTables() const;

 private:
  SparseExtent(std::unique_ptr<common::File> file, uint64_t file_size, GrainGeometry geometry,
               uint64_t extent_size_bytes);
  Status LoadDirectory();
  Result<GrainTable> LoadTable(uint64_t gd_index) const;
  // The GTE of `grain`, keeping the last table used in `table`/`table_index` so a walk
  // over consecutive grains takes the cache lock once per table.
  Result<uint32_t> LookupGte(uint64_t grain, std::shared_ptr<const GrainTable>& table,
                             uint64_t& table_index) const;
  Status ReadCompressedGrain(uint64_t grain, uint32_t gte, uint64_t in_grain_bytes,
                             std::span<std::byte> dst) const;
  // Bytes of `grain` that lie inside the header's capacity.
  uint64_t GrainValidBytes(uint64_t grain) const;

  std::unique_ptr<common::File> file_;
  uint64_t file_size_;
  GrainGeometry geo_;
  uint64_t size_bytes_;
  uint64_t id_;  // distinguishes extents in the per-thread inflated-grain memo
  std::vector<uint32_t> directory_;  // immutable after Open
  mutable GrainTableCache tables_;
  ExtentDetails details_;
  std::vector<std::string> warnings_;
};

}  // namespace vmdk
