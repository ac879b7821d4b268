// SPDX-License-Identifier: Apache-2.0
#pragma once

// Which layer of a chain serves each block: the per-block index that makes a read cost
// the same at depth 32 as at depth 1 (DESIGN.md, "Chain lookup must not slow down with
// depth"). Built once when a chain is opened, from the frozen layers' ownership bits,
// bottom to top; frozen layers never change while open, so it is read without locks.
//
// Owner 0 is the base (the parent VMDK chain); owner k is the k-th frozen delta layer
// from the bottom. The index is kept in chunks of 4096 blocks (16 MiB of disk): a chunk
// served by one layer throughout is one byte, a mixed chunk 4 KiB. Memory therefore
// grows with how scattered the layers' blocks are, at most one byte per block.

#include <cstdint>
#include <memory>
#include <vector>

namespace engine {

class LayerIndex {
 public:
  static constexpr uint64_t kBlocksPerChunk = 4096;
  // Owners are bytes: the base and up to 255 frozen layers.
  static constexpr unsigned kMaxOwner = 255;

  explicit LayerIndex(uint64_t block_count);
  LayerIndex(LayerIndex&&) = default;
  LayerIndex& operator=(LayerIndex&&) = default;

  uint64_t block_count() const { return block_count_; }
  // Blocks [first, first + count) are served by `owner` (later calls win): callers assign
  // each layer's runs from the bottom layer to the top.
  void Assign(uint64_t first, uint64_t count, uint8_t owner);
  // Folds chunks that ended up with one owner throughout back into one byte.
  void Compact();

  uint8_t Owner(uint64_t block) const;
  // The number of blocks from `first` (at most max_blocks) served by the same layer as
  // `first`, and that layer in *owner.
  uint64_t RunLength(uint64_t first, uint64_t max_blocks, uint8_t* owner) const;
  // Bytes the index holds beyond its fixed per-chunk part (for tests and benchmarks).
  uint64_t mixed_chunk_bytes() const;

 private:
  uint64_t ChunkBlocks(uint64_t chunk) const;

  uint64_t block_count_;
  std::vector<uint8_t> uniform_;                    // owner of a chunk with no array
  std::vector<std::unique_ptr<uint8_t[]>> mixed_;   // per-block owners, or null
};

}  // namespace engine
