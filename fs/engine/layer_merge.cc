// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/layer_merge.h"

#include <algorithm>
#include <vector>

#include "fs/engine/layer_stack.h"
#include "fs/engine/packed_layer.h"

namespace engine {
namespace {

using common::Result;
using common::Status;

constexpr uint64_t kCopyBytes = 1 << 20;

// Copies the data of [offset, end) from `from` into `to`, skipping holes (so discarded
// blocks stay holes), then marks the blocks owned.
Status CopyRun(const DeltaLayer& from, DeltaLayer& to, uint64_t first_block, uint64_t count,
               std::vector<std::byte>& buffer, uint64_t& done, const MergeOptions& options) {
  BOOST_OUTCOME_TRYV(ForEachDataPiece(
      from, first_block, count, kCopyBytes, [&](uint64_t at, uint64_t length) -> Status {
        auto part = std::span(buffer).first(length);
        BOOST_OUTCOME_TRYV(from.ReadData(at, part));
        BOOST_OUTCOME_TRYV(to.WriteData(at, part));
        done += part.size();
        if (options.progress) options.progress(done);
        return Status::Ok();
      }));
  to.MarkOwned(first_block, count);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<DeltaLayer>> MergeLayers(common::Storage& storage, const DeltaLayer& lower,
                                                const DeltaLayer& upper, const DeltaPaths& paths,
                                                const MergeOptions& options) {
  DeltaHeader header = upper.header();
  header.parent_layer_id = lower.header().parent_layer_id;
  header.clean_shutdown = true;
  header.generation = 0;
  if (options.packed) {
    const DeltaLayer* sources[] = {&upper, &lower};
    return WritePackedLayer(storage, paths, header, sources, {options.progress});
  }
  header.packed = false;
  BOOST_OUTCOME_TRY(merged, DeltaLayer::Create(storage, paths, header));
  std::vector<std::byte> buffer(kCopyBytes);
  uint64_t done = 0;
  Status status;
  ForEachOwnedRun(upper, [&](uint64_t first, uint64_t count) {
    if (status.ok()) status = CopyRun(upper, *merged, first, count, buffer, done, options);
  });
  // Then lower's blocks where upper holds none.
  ForEachOwnedRun(lower, [&](uint64_t first, uint64_t count) {
    for (uint64_t b = first; b < first + count && status.ok();) {
      bool owned_above = false;
      const uint64_t run = upper.RunLength(b, first + count - b, &owned_above);
      if (!owned_above) status = CopyRun(lower, *merged, b, run, buffer, done, options);
      b += run;
    }
  });
  if (status.ok()) status = merged->Close();
  if (!status.ok()) {
    merged.reset();
    (void)storage.Remove(paths.data);
    (void)storage.Remove(paths.map);
    return status;
  }
  merged.reset();
  return DeltaLayer::Open(storage, paths, /*writable=*/false);
}

}  // namespace engine
