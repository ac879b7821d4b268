// SPDX-License-Identifier: Apache-2.0
#pragma once

// Where each owned block of a packed (frozen) layer sits in its data file: the rank of
// the block among the layer's owned blocks (docs/delta-format.md, "Packed layers").
// Built once from the layer's ownership bits, which never change for a frozen layer, so
// lookups take no lock and cost a few popcounts whatever the capacity.
//
// Memory follows the bitmap's own chunks: 8 bytes per 128 MiB of capacity, plus 128
// bytes per chunk that holds any owned block (the bits themselves take 4 KiB there).

#include <cstdint>
#include <memory>
#include <vector>

#include "fs/engine/ownership_bits.h"

namespace engine {

class BlockRank {
 public:
  // The bits must not change while the rank is in use.
  explicit BlockRank(const OwnershipBits& bits);

  // The number of owned blocks before `block`.
  uint64_t OwnedBefore(uint64_t block) const;
  uint64_t owned_total() const { return owned_total_; }

 private:
  static constexpr uint64_t kWordsPerGroup = 8;  // one prefix count per 512 blocks
  static constexpr uint64_t kGroupsPerChunk = OwnershipBits::kWordsPerChunk / kWordsPerGroup;

  const OwnershipBits& bits_;
  std::vector<uint64_t> chunk_base_;  // owned blocks before each chunk
  // Per present chunk, owned blocks before each group within it (null: chunk absent).
  std::vector<std::unique_ptr<uint16_t[]>> group_base_;
  uint64_t owned_total_ = 0;
};

}  // namespace engine
