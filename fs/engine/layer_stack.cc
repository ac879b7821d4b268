// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/layer_stack.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "fs/engine/read_pool.h"

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
  if (frozen_.empty() || dst.empty()) return base_->Read(offset_bytes, dst);
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
  // When the base holds more than one piece, it is read whole in one request (large reads
  // go around the page cache at device speed), started first on the read pool, while the
  // layers' pieces land in a scratch buffer, copied over it once all are done. The
  // layers' pieces are tried from the page cache right here (frozen layers are packed and
  // read ahead, so most are there); only those missing go to the pool, side by side, so
  // the device sees them together. Handing a cached piece to a thread would cost more
  // than reading it.
  const bool base_whole = base_pieces > 1;
  // Not zeroed: only the layers' pieces are written into it and copied out of it.
  std::unique_ptr<std::byte[]> scratch(base_whole ? new std::byte[dst.size()] : nullptr);
  std::span<std::byte> layer_target = base_whole ? std::span(scratch.get(), dst.size()) : dst;
  Status base_status;
  std::vector<Status> results(pieces.size());
  auto read_piece = [&](size_t i) {
    const Piece& piece = pieces[i];
    if (piece.owner == 0) {
      results[i] = base_->Read(piece.pos, dst.subspan(piece.pos - offset_bytes, piece.length));
    } else {
      results[i] = frozen_[piece.owner - 1]->ReadData(
          piece.pos, layer_target.subspan(piece.pos - offset_bytes, piece.length));
    }
  };
  {
    ReadPool::Batch batch(ReadPool::Shared());
    if (base_whole) batch.Add([&] { base_status = base_->Read(offset_bytes, dst); });
    std::vector<size_t> missing;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const Piece& piece = pieces[i];
      if (piece.owner == 0) {
        if (!base_whole) missing.push_back(i);
        continue;
      }
      if (!frozen_[piece.owner - 1]->ReadCachedData(
              piece.pos, layer_target.subspan(piece.pos - offset_bytes, piece.length))) {
        missing.push_back(i);
      }
    }
    // The calling thread takes the last missing piece itself.
    for (size_t k = 0; k + 1 < missing.size(); ++k) {
      batch.Add([&read_piece, i = missing[k]] { read_piece(i); });
    }
    if (!missing.empty()) read_piece(missing.back());
    batch.Wait();
  }
  if (!base_status.ok()) return base_status;
  for (const Status& s : results) {
    if (!s.ok()) return s;
  }
  if (base_whole) {
    for (const Piece& p : pieces) {
      if (p.owner == 0) continue;
      std::memcpy(dst.data() + (p.pos - offset_bytes), scratch.get() + (p.pos - offset_bytes),
                  p.length);
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
