// SPDX-License-Identifier: Apache-2.0
#pragma once

// Writing packed layers (docs/delta-format.md, "Packed layers"): the form a layer takes
// when a snapshot freezes it, or when deleting a snapshot merges two frozen layers. Its
// data file holds only the owned blocks, side by side in ascending block order, so a
// frozen layer takes the space of what was written to it and reading ahead in it fetches
// its next blocks rather than holes. Deep chains read from many small frozen layers;
// this is what keeps their reads near the speed of a single layer's.

#include <functional>
#include <memory>
#include <span>

#include "common/storage.h"
#include "fs/engine/delta_layer.h"

namespace engine {

struct PackOptions {
  // Called with the bytes of data copied so far, about every 4 MiB and at the end.
  std::function<void(uint64_t done_bytes)> progress;
};

// Creates a packed layer at `paths` (EEXIST if either file exists) that owns every block
// any of `sources` owns, each block's contents taken from the first source in the list
// that owns it (list them top first); blocks that read as zeros there (holes) stay holes.
// Identity, capacity and generation come from `header`; the layer is marked packed and
// clean. Both files are fdatasync'd (the caller syncs their directory); on failure the
// files this call created are removed. Returns the new layer, open read-only.
common::Result<std::unique_ptr<DeltaLayer>> WritePackedLayer(
    common::Storage& storage, const DeltaPaths& paths, DeltaHeader header,
    std::span<const DeltaLayer* const> sources, const PackOptions& options = {});

}  // namespace engine
