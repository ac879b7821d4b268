// SPDX-License-Identifier: Apache-2.0
#pragma once

// Merging a frozen layer into the layer above it, for deleting a snapshot point
// (docs/snapshots.md, "Deleting a snapshot point"). The result is a new layer in new
// files that reads, block for block, as `upper` over `lower` read: `upper`'s blocks, and
// `lower`'s where `upper` holds none. It takes `upper`'s id (so the layers and snapshot
// points above keep pointing at it) and `lower`'s parent. Neither input changes, so the
// merge becomes visible only when clone.json is replaced to name the new files: a crash
// before leaves the old chain intact and the new files unreferenced.

#include <functional>
#include <memory>

#include "common/storage.h"
#include "fs/engine/delta_layer.h"

namespace engine {

struct MergeOptions {
  // Called with the bytes copied so far.
  std::function<void(uint64_t done_bytes)> progress;
  // The result will be a frozen layer: write it packed (packed_layer.h). Otherwise it is
  // sparse, as a top layer must be to take writes.
  bool packed = false;
};

// Creates the merged layer at `paths` (EEXIST if a file exists) and closes it cleanly;
// returns it open read-only. Discarded blocks (owned, a hole in the data) stay holes.
common::Result<std::unique_ptr<DeltaLayer>> MergeLayers(common::Storage& storage,
                                                        const DeltaLayer& lower,
                                                        const DeltaLayer& upper,
                                                        const DeltaPaths& paths,
                                                        const MergeOptions& options = {});

}  // namespace engine
