// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/ownership_bits.h"

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
