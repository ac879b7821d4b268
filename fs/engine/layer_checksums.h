// SPDX-License-Identifier: Apache-2.0
#pragma once

// Per-block checksums of a frozen layer (docs/snapshots.md, "Checksums"): written beside
// the layer when a snapshot freezes it, so that `clonectl verify --full` can scrub every
// block a snapshot holds and name any that changed.
//
// File layout (D-<id>.sums): a 4096-byte header (magic "CLNFSSUM", version, block size,
// block count, the layer's id, an XXH3-64 of the header), then one little-endian
// XXH3-64 per block at 4096 + 8 x block, written for the blocks the layer owns only (the
// rest stay a hole). A discarded block's checksum is that of its zeros.

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
