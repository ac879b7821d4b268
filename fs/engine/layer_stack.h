// SPDX-License-Identifier: Apache-2.0
#pragma once

// The read-only part of a chain with snapshot layers: the base (a parent VMDK chain) and
// the frozen delta layers above it, bottom to top (docs/snapshots.md). A block is read
// from the topmost layer that owns it; which layer that is comes from a per-block index
// built at open (layer_index.h), so a read costs one index lookup whatever the depth.

#include <algorithm>
#include <memory>
#include <vector>

#include "fs/engine/delta_layer.h"
#include "fs/engine/layer_index.h"
#include "fs/engine/lower_layers.h"

namespace engine {

class LayerStack final : public LowerLayers {
 public:
  // `frozen` are open read-only, bottom to top, each as large as the base. EINVAL for a
  // capacity mismatch or more than LayerIndex::kMaxOwner layers.
  static Result<std::unique_ptr<LayerStack>> Create(
      std::unique_ptr<LowerLayers> base, std::vector<std::unique_ptr<DeltaLayer>> frozen);

  uint64_t capacity_bytes() const override { return base_->capacity_bytes(); }
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override;
  Result<Run> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const override;

  size_t frozen_count() const { return frozen_.size(); }
  const LowerLayers& base() const { return *base_; }
  const LayerIndex& index() const { return index_; }

 private:
  LayerStack(std::unique_ptr<LowerLayers> base, std::vector<std::unique_ptr<DeltaLayer>> frozen,
             LayerIndex index)
      : base_(std::move(base)), frozen_(std::move(frozen)), index_(std::move(index)) {}

  std::unique_ptr<LowerLayers> base_;
  std::vector<std::unique_ptr<DeltaLayer>> frozen_;
  LayerIndex index_;
};

// What a layer owning [offset_bytes, run_end) holds there: data where its data file has
// data, zeros over its holes (blocks it discarded). Shared by CowDisk and LayerStack.
Result<LowerLayers::Run> MapOwnedBlocks(const DeltaLayer& layer, uint64_t offset_bytes,
                                        uint64_t run_end);

// The owned blocks of a delta layer as runs, for callers that walk what a layer holds
// (the index, checksums, merges): calls fn(first_block, count) for each run of owned
// blocks in ascending order, skipping chunks never touched in one step.
template <typename Fn>
void ForEachOwnedRun(const DeltaLayer& layer, Fn&& fn) {
  uint64_t block = 0;
  while (block < layer.block_count()) {
    bool owned = false;
    uint64_t run = layer.RunLength(block, layer.block_count() - block, &owned);
    if (owned) fn(block, run);
    block += run;
  }
}

// Walks the data a layer holds in blocks [first_block, first_block + count), which it
// owns: calls fn(offset_bytes, length_bytes) for pieces of at most max_piece_bytes in
// ascending order, skipping holes (discarded blocks, which read as zeros). Stops at the
// first failure of NextData/NextHole or of fn.
template <typename Fn>
Status ForEachDataPiece(const DeltaLayer& layer, uint64_t first_block, uint64_t count,
                        uint64_t max_piece_bytes, Fn&& fn) {
  const uint64_t end = std::min(layer.capacity_bytes(), (first_block + count) * kBlockBytes);
  for (uint64_t pos = first_block * kBlockBytes; pos < end;) {
    BOOST_OUTCOME_TRY(data_at, layer.NextData(pos));
    if (data_at >= end) break;
    BOOST_OUTCOME_TRY(hole_at, layer.NextHole(data_at));
    const uint64_t stop = std::min(hole_at, end);
    for (uint64_t at = data_at; at < stop; at += max_piece_bytes) {
      BOOST_OUTCOME_TRYV(fn(at, std::min(max_piece_bytes, stop - at)));
    }
    pos = stop;
  }
  return Status::Ok();
}

}  // namespace engine
