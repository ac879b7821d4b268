// SPDX-License-Identifier: Apache-2.0
#pragma once

// The merged, writable view of one virtual disk of a linked clone: reads come from the
// clone's delta layer where it owns a block and from the lower (parent) layers
// elsewhere; writes land in the delta only. This is what the FUSE daemon presents as
// D-flat.vmdk. Knows nothing of FUSE.
//
// Thread safety: all methods may be called concurrently. Writes to blocks the delta
// does not own yet take per-block locks (striped), so two writers filling parts of one
// new block both keep their bytes; everything else is lock-free on the read path.

#include <array>
#include <memory>
#include <mutex>

#include "fs/engine/delta_layer.h"
#include "fs/engine/lower_layers.h"
#include "fs/engine/virtual_disk.h"

namespace engine {

class CowDisk final : public VirtualDisk {
 public:
  // The delta's capacity must equal the lower layers' (EINVAL otherwise).
  static Result<std::unique_ptr<CowDisk>> Create(std::unique_ptr<LowerLayers> lower,
                                                 std::unique_ptr<DeltaLayer> delta);

  uint64_t capacity_bytes() const override { return delta_->capacity_bytes(); }
  bool read_only() const override { return !delta_->writable(); }
  DeltaLayer& delta() { return *delta_; }
  const LowerLayers& lower() const { return *lower_; }

  // Ranges must lie within capacity (EINVAL otherwise; the adapter clamps first).
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override;
  Status Write(uint64_t offset_bytes, std::span<const std::byte> src) override;
  // Makes the range read as zeros in this disk without touching the lower layers: whole
  // blocks are punched out of the delta, partial ones overwritten with zeros.
  Status Discard(uint64_t offset_bytes, uint64_t length_bytes) override;
  // Durability point (guest fsync/flush): see DeltaLayer::Flush.
  Status Flush() override { return delta_->Flush(); }

  // The merged allocation, for SEEK_DATA/SEEK_HOLE: the first offset >= offset_bytes that
  // holds data / reads as zeros; capacity_bytes() when there is none.
  Result<uint64_t> NextData(uint64_t offset_bytes) const override;
  Result<uint64_t> NextHole(uint64_t offset_bytes) const override;
  // Owned blocks, not host allocation: a discarded block is owned and holds no data.
  uint64_t OwnBytes() const override {
    return std::min(delta_->owned_blocks() * kBlockBytes, capacity_bytes());
  }

 private:
  CowDisk(std::unique_ptr<LowerLayers> lower, std::unique_ptr<DeltaLayer> delta)
      : lower_(std::move(lower)), delta_(std::move(delta)) {}

  // Whether [offset, offset + max) starts with data, and how long that run is.
  Result<LowerLayers::Run> MapMerged(uint64_t offset_bytes, uint64_t max_length_bytes) const;
  // Writes whole blocks [first, first + count) from src, taking ownership of them.
  Status WriteWholeBlocks(uint64_t first_block, uint64_t count, std::span<const std::byte> src);
  // Writes bytes [in_block, in_block + src.size()) of one block (read-modify-write when
  // the delta does not own it yet). src.empty() with zero_fill writes zeros.
  Status WritePartialBlock(uint64_t block, uint64_t in_block, std::span<const std::byte> src);
  std::mutex& BlockLock(uint64_t block) { return block_locks_[block % block_locks_.size()]; }

  std::unique_ptr<LowerLayers> lower_;
  std::unique_ptr<DeltaLayer> delta_;
  // Striped locks for blocks being taken over. Several are always taken in ascending
  // stripe order, so two multi-block writers cannot deadlock.
  std::array<std::mutex, 256> block_locks_;
};

}  // namespace engine
