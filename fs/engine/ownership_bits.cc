// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/ownership_bits.h"

#include <algorithm>
#include <bit>

namespace engine {

OwnershipBits::OwnershipBits(uint64_t word_count)
    : word_count_(word_count), chunks_((word_count + kWordsPerChunk - 1) / kWordsPerChunk) {}

OwnershipBits::~OwnershipBits() {
  for (auto& chunk : chunks_) delete[] chunk.load();
}

uint64_t OwnershipBits::Load(uint64_t word) const {
  const Chunk* chunk = chunks_[word / kWordsPerChunk].load(std::memory_order_acquire);
  return chunk == nullptr ? 0 : chunk[word % kWordsPerChunk].load(std::memory_order_acquire);
}

bool OwnershipBits::ChunkPresent(uint64_t word) const {
  return chunks_[word / kWordsPerChunk].load(std::memory_order_acquire) != nullptr;
}

uint64_t OwnershipBits::FetchOr(uint64_t word, uint64_t mask) {
  Chunk* chunk = GetOrMakeChunk(word / kWordsPerChunk);
  return chunk[word % kWordsPerChunk].fetch_or(mask, std::memory_order_release);
}

void OwnershipBits::SetRun(uint64_t first, uint64_t count) {
  for (uint64_t block = first; block < first + count;) {
    const uint64_t bit = block % 64;
    const uint64_t n = std::min(64 - bit, first + count - block);
    FetchOr(block / 64, (n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1)) << bit);
    block += n;
  }
}

uint64_t OwnershipBits::RunLength(uint64_t first, uint64_t end, bool* set_out) const {
  constexpr uint64_t kBitsPerWord = 64;
  uint64_t word = Load(first / kBitsPerWord);
  const bool set = (word >> (first % kBitsPerWord)) & 1;
  if (set_out) *set_out = set;
  uint64_t block = first;
  while (true) {
    uint64_t same = set ? word : ~word;
    same >>= block % kBitsPerWord;  // bits from `block` on: 1 = same state
    const uint64_t run = std::countr_one(same);
    const uint64_t left_in_word = kBitsPerWord - block % kBitsPerWord;
    if (run < left_in_word || block + left_in_word >= end) {
      return std::min(block + std::min(run, left_in_word), end) - first;
    }
    block += left_in_word;
    if (!set && !ChunkPresent(block / kBitsPerWord)) {
      // A chunk never touched: all of it clear, skipped in one step.
      const uint64_t chunk_blocks = kWordsPerChunk * kBitsPerWord;
      const uint64_t next_chunk = (block / chunk_blocks + 1) * chunk_blocks;
      if (next_chunk >= end) return end - first;
      block = next_chunk;
    }
    word = Load(block / kBitsPerWord);
  }
}

OwnershipBits::Chunk* OwnershipBits::GetOrMakeChunk(uint64_t index) {
  Chunk* chunk = chunks_[index].load(std::memory_order_acquire);
  if (chunk != nullptr) return chunk;
  Chunk* fresh = new Chunk[kWordsPerChunk];
  for (uint64_t i = 0; i < kWordsPerChunk; ++i) fresh[i].store(0, std::memory_order_relaxed);
  if (chunks_[index].compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
    return fresh;
  }
  delete[] fresh;  // another thread published one first
  return chunk;
}

}  // namespace engine
