// SPDX-License-Identifier: Apache-2.0
#pragma once

// The in-memory ownership bitmap of a delta layer, 64 blocks a word, allocated in chunks
// on first use: a chunk that never had a bit set costs one null pointer. A 1 TiB layer
// (2^28 blocks, a 32 MiB bitmap) therefore opens without allocating or reading 32 MiB,
// and a clone's memory grows with what it wrote, not with its capacity.
//
// Thread safety: Load and FetchOr may be called concurrently from any thread; a chunk is
// published with a compare-and-swap, so two threads touching a new chunk agree on one.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace engine {

class OwnershipBits {
 public:
  // One chunk covers one 4 KiB page of the on-disk bitmap: 32768 blocks, 128 MiB of disk.
  static constexpr uint64_t kWordsPerChunk = 512;

  explicit OwnershipBits(uint64_t word_count);
  ~OwnershipBits();
  OwnershipBits(const OwnershipBits&) = delete;
  OwnershipBits& operator=(const OwnershipBits&) = delete;

  uint64_t word_count() const { return word_count_; }
  // The word's bits (0 in a chunk never touched).
  uint64_t Load(uint64_t word) const;
  // Whether the chunk holding `word` exists; when it does not, every bit in it is 0.
  bool ChunkPresent(uint64_t word) const;
  // Sets bits, returning the word as it was before.
  uint64_t FetchOr(uint64_t word, uint64_t mask);
  // Sets the bits of blocks [first, first + count).
  void SetRun(uint64_t first, uint64_t count);
  // The number of blocks from `first` up to `end` (exclusive, > first) whose bit equals
  // `first`'s, and in *set that bit. The first word is loaded once and decides the state,
  // so the run is at least one block long whatever other threads set meanwhile; bits
  // only ever get set, so later words can only shorten a run of clear bits. Chunks never
  // touched are skipped in one step.
  uint64_t RunLength(uint64_t first, uint64_t end, bool* set) const;

 private:
  using Chunk = std::atomic<uint64_t>;
  Chunk* GetOrMakeChunk(uint64_t chunk);

  uint64_t word_count_;
  std::vector<std::atomic<Chunk*>> chunks_;
};

}  // namespace engine
