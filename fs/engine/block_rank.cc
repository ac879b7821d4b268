// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/block_rank.h"

#include <bit>

namespace engine {

BlockRank::BlockRank(const OwnershipBits& bits)
    : bits_(bits),
      chunk_base_((bits.word_count() + OwnershipBits::kWordsPerChunk - 1) /
                  OwnershipBits::kWordsPerChunk),
      group_base_(chunk_base_.size()) {
  uint64_t owned = 0;
  for (uint64_t chunk = 0; chunk < chunk_base_.size(); ++chunk) {
    chunk_base_[chunk] = owned;
    const uint64_t first_word = chunk * OwnershipBits::kWordsPerChunk;
    if (!bits.ChunkPresent(first_word)) continue;
    auto groups = std::make_unique<uint16_t[]>(kGroupsPerChunk);
    uint64_t in_chunk = 0;  // at most 32768: fits the 16 bits
    for (uint64_t group = 0; group < kGroupsPerChunk; ++group) {
      groups[group] = static_cast<uint16_t>(in_chunk);
      for (uint64_t i = 0; i < kWordsPerGroup; ++i) {
        const uint64_t word = first_word + group * kWordsPerGroup + i;
        if (word < bits.word_count()) in_chunk += std::popcount(bits.Load(word));
      }
    }
    group_base_[chunk] = std::move(groups);
    owned += in_chunk;
  }
  owned_total_ = owned;
}

uint64_t BlockRank::OwnedBefore(uint64_t block) const {
  const uint64_t word = block / 64;
  const uint64_t chunk = word / OwnershipBits::kWordsPerChunk;
  if (chunk >= chunk_base_.size()) return owned_total_;
  uint64_t rank = chunk_base_[chunk];
  const uint16_t* groups = group_base_[chunk].get();
  if (groups == nullptr) return rank;
  const uint64_t in_chunk = word % OwnershipBits::kWordsPerChunk;
  rank += groups[in_chunk / kWordsPerGroup];
  for (uint64_t w = word - in_chunk % kWordsPerGroup; w < word; ++w) {
    rank += std::popcount(bits_.Load(w));
  }
  const uint64_t below = block % 64;
  if (below != 0) rank += std::popcount(bits_.Load(word) & ((uint64_t{1} << below) - 1));
  return rank;
}

}  // namespace engine
