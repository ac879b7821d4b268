// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/layer_stack.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <vector>

namespace engine {

using common::Error;

Result<std::unique_ptr<LayerStack>> LayerStack::Create(
    std::unique_ptr<LowerLayers> base, std::vector<std::unique_ptr<DeltaLayer>> frozen) {
  if (frozen.size() > LayerIndex::kMaxOwner) {
    return Error(EINVAL, "a chain of {} snapshot layers is deeper than the {} supported",
                 frozen.size(), LayerIndex::kMaxOwner);
  }
  const uint64_t capacity = base->capacity_bytes();
  const uint64_t block_count = (capacity + kBlockBytes - 1) / kBlockBytes;
  LayerIndex index(block_count);
  for (size_t i = 0; i < frozen.size(); ++i) {
    if (frozen[i]->capacity_bytes() != capacity) {
      return Error(EINVAL, "snapshot layer {} has capacity {} bytes, its chain {} bytes", i + 1,
                   frozen[i]->capacity_bytes(), capacity);
    }
    const auto owner = static_cast<uint8_t>(i + 1);
    ForEachOwnedRun(*frozen[i], [&](uint64_t first, uint64_t count) {
      index.Assign(first, count, owner);
    });
  }
  index.Compact();
  return std::unique_ptr<LayerStack>(
      new LayerStack(std::move(base), std::move(frozen), std::move(index)));
}

Status LayerStack::Read(uint64_t offset_bytes, std::span<std::byte> dst) const {
  if (frozen_.empty()) return base_->Read(offset_bytes, dst);
  const uint64_t end = offset_bytes + dst.size();
  const uint64_t last_block = (end - 1) / kBlockBytes;
  uint64_t block = offset_bytes / kBlockBytes;
  uint8_t owner = 0;
  uint64_t run = index_.RunLength(block, last_block - block + 1, &owner);
  if (block + run > last_block) {  // one layer serves it all: the common case
    return owner == 0 ? base_->Read(offset_bytes, dst)
                      : frozen_[owner - 1]->ReadData(offset_bytes, dst);
  }

  // A range the layers split into pieces (deep chains scatter them): read it the way that
  // costs one device wait, not one per piece.
  struct Piece {
    uint64_t pos;
    uint64_t length;
    uint8_t owner;
  };
  std::vector<Piece> pieces;
  size_t base_pieces = 0;
  for (uint64_t pos = offset_bytes; pos < end;) {
    block = pos / kBlockBytes;
    run = index_.RunLength(block, last_block - block + 1, &owner);
    const uint64_t run_end = std::min(end, (block + run) * kBlockBytes);
    pieces.push_back({pos, run_end - pos, owner});
    base_pieces += owner == 0;
    pos = run_end;
  }
  // The base is read whole in one request (large reads go around the page cache at
  // device speed) and the frozen layers' pieces are copied over it, rather than reading
  // the base's pieces one small read at a time.
  const bool base_whole = base_pieces > 1;
  if (base_whole) {
    BOOST_OUTCOME_TRYV(base_->Read(offset_bytes, dst));
  }
  // Each frozen layer's span is asked for at once, so its pieces arrive together.
  std::array<std::pair<uint64_t, uint64_t>, LayerIndex::kMaxOwner + 1> spans{};
  for (const Piece& p : pieces) {
    if (p.owner == 0) continue;
    auto& [first, last] = spans[p.owner];
    if (last == 0) first = p.pos;
    last = p.pos + p.length;
  }
  for (size_t k = 1; k < spans.size(); ++k) {
    if (spans[k].second != 0) {
      frozen_[k - 1]->PrefetchData(spans[k].first, spans[k].second - spans[k].first);
    }
  }
  for (const Piece& p : pieces) {
    auto part = dst.subspan(p.pos - offset_bytes, p.length);
    if (p.owner != 0) {
      BOOST_OUTCOME_TRYV(frozen_[p.owner - 1]->ReadData(p.pos, part));
    } else if (!base_whole) {
      BOOST_OUTCOME_TRYV(base_->Read(p.pos, part));
    }
  }
  return Status::Ok();
}

Result<LowerLayers::Run> LayerStack::Map(uint64_t offset_bytes, uint64_t max_length_bytes) const {
  if (frozen_.empty()) return base_->Map(offset_bytes, max_length_bytes);
  const uint64_t block = offset_bytes / kBlockBytes;
  const uint64_t end = std::min(capacity_bytes(), offset_bytes + max_length_bytes);
  uint8_t owner = 0;
  const uint64_t run = index_.RunLength(block, (end - 1) / kBlockBytes - block + 1, &owner);
  const uint64_t run_end = std::min(end, (block + run) * kBlockBytes);
  if (owner == 0) return base_->Map(offset_bytes, run_end - offset_bytes);
  return MapOwnedBlocks(*frozen_[owner - 1], offset_bytes, run_end);
}

Result<LowerLayers::Run> MapOwnedBlocks(const DeltaLayer& layer, uint64_t offset_bytes,
                                        uint64_t run_end) {
  BOOST_OUTCOME_TRY(data_at, layer.NextData(offset_bytes));
  if (data_at > offset_bytes) {
    return LowerLayers::Run{false, std::min(data_at, run_end) - offset_bytes};
  }
  BOOST_OUTCOME_TRY(hole_at, layer.NextHole(offset_bytes));
  return LowerLayers::Run{true, std::max(std::min(hole_at, run_end), offset_bytes + 1) -
                                    offset_bytes};
}

}  // namespace engine
