// SPDX-License-Identifier: Apache-2.0
#pragma once

// Per-block checksums of a frozen layer (docs/snapshots.md, "Checksums"): written beside
// the layer when a snapshot freezes it, so that `clonectl verify --full` can scrub every
// block a snapshot holds and name any that changed.
//
// File layout (D-<id>.sums): a 4096-byte header (magic "CLNFSSUM", version, block size,
// block count, the layer's id, an XXH3-64 of the header), then one little-endian
// XXH3-64 per owned block, in ascending block order: the n-th owned block's at
// 4096 + 8 x n (version 2; version 1, still read, kept one per block of the disk at
// 4096 + 8 x block, mostly holes). A discarded block's checksum is that of its zeros.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/storage.h"
#include "fs/engine/delta_layer.h"

namespace engine {

struct ChecksumOptions {
  // Called with the bytes of owned blocks done so far, about every 4 MiB.
  std::function<void(uint64_t done_bytes)> progress;
};

// Creates `path` (EEXIST if it exists) with the checksums of every block `layer` owns,
// and makes it durable (fdatasync; the caller syncs the directory).
common::Status WriteLayerChecksums(common::Storage& storage, const DeltaLayer& layer,
                                   const std::string& path, const ChecksumOptions& options = {});

struct ScrubReport {
  uint64_t checked_blocks = 0;
  std::vector<uint64_t> bad_blocks;  // ascending
  // Where each bad block lies in the layer's data file (packed layers keep blocks side by
  // side, so this differs from the block's place in the disk).
  std::vector<uint64_t> bad_file_offsets;
};

// Reads every block the layer owns and compares it with its checksum. EIO naming the
// file for a damaged header or one written for another layer.
common::Result<ScrubReport> ScrubLayer(common::Storage& storage, const DeltaLayer& layer,
                                       const std::string& path,
                                       const ChecksumOptions& options = {});

// Checks only the header of a checksum file against its layer (cheap: `verify` without
// --full).
common::Status CheckChecksumHeader(common::Storage& storage, const DeltaLayer& layer,
                                   const std::string& path);

}  // namespace engine
