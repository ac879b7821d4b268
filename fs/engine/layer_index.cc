// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/layer_index.h"

#include <algorithm>
#include <cstring>

namespace engine {

LayerIndex::LayerIndex(uint64_t block_count)
    : block_count_(block_count),
      uniform_((block_count + kBlocksPerChunk - 1) / kBlocksPerChunk, 0),
      mixed_(uniform_.size()) {}

uint64_t LayerIndex::ChunkBlocks(uint64_t chunk) const {
  return std::min(kBlocksPerChunk, block_count_ - chunk * kBlocksPerChunk);
}

void LayerIndex::Assign(uint64_t first, uint64_t count, uint8_t owner) {
  const uint64_t end = std::min(block_count_, first + count);
  uint64_t block = first;
  while (block < end) {
    const uint64_t chunk = block / kBlocksPerChunk;
    const uint64_t in_chunk = block % kBlocksPerChunk;
    const uint64_t n = std::min(end - block, ChunkBlocks(chunk) - in_chunk);
    if (n == ChunkBlocks(chunk)) {
      mixed_[chunk].reset();
      uniform_[chunk] = owner;
    } else {
      if (!mixed_[chunk]) {
        if (uniform_[chunk] == owner) {
          block += n;
          continue;
        }
        mixed_[chunk] = std::make_unique<uint8_t[]>(kBlocksPerChunk);
        std::memset(mixed_[chunk].get(), uniform_[chunk], kBlocksPerChunk);
      }
      std::memset(mixed_[chunk].get() + in_chunk, owner, n);
    }
    block += n;
  }
}

void LayerIndex::Compact() {
  for (uint64_t chunk = 0; chunk < mixed_.size(); ++chunk) {
    if (!mixed_[chunk]) continue;
    const uint8_t* owners = mixed_[chunk].get();
    const uint64_t n = ChunkBlocks(chunk);
    if (std::all_of(owners, owners + n, [&](uint8_t o) { return o == owners[0]; })) {
      uniform_[chunk] = owners[0];
      mixed_[chunk].reset();
    }
  }
}

uint8_t LayerIndex::Owner(uint64_t block) const {
  const uint64_t chunk = block / kBlocksPerChunk;
  return mixed_[chunk] ? mixed_[chunk][block % kBlocksPerChunk] : uniform_[chunk];
}

uint64_t LayerIndex::RunLength(uint64_t first, uint64_t max_blocks, uint8_t* owner) const {
  const uint64_t end = std::min(block_count_, first + max_blocks);
  const uint8_t want = Owner(first);
  *owner = want;
  uint64_t block = first;
  while (block < end) {
    const uint64_t chunk = block / kBlocksPerChunk;
    const uint64_t chunk_end = std::min(end, chunk * kBlocksPerChunk + ChunkBlocks(chunk));
    if (!mixed_[chunk]) {
      if (uniform_[chunk] != want) break;
      block = chunk_end;
      continue;
    }
    const uint8_t* owners = mixed_[chunk].get() - chunk * kBlocksPerChunk;
    while (block < chunk_end && owners[block] == want) ++block;
    if (block < chunk_end) break;
  }
  return block - first;
}

uint64_t LayerIndex::mixed_chunk_bytes() const {
  uint64_t n = 0;
  for (const auto& m : mixed_) n += m ? kBlocksPerChunk : 0;
  return n;
}

}  // namespace engine
