// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/block_rank.h"

#include <gtest/gtest.h>

#include <random>

namespace engine {
namespace {

// Rank against counting bit by bit, at every block of a layout that has absent chunks,
// full chunks, scattered bits and a partial last word.
TEST(BlockRankTest, CountsTheOwnedBlocksBeforeEachBlock) {
  const uint64_t blocks = 5 * 32768 + 100;
  OwnershipBits bits((blocks + 63) / 64);
  std::mt19937_64 random(7);
  std::vector<bool> owned(blocks);
  auto set = [&](uint64_t first, uint64_t count) {
    bits.SetRun(first, count);
    for (uint64_t b = first; b < first + count; ++b) owned[b] = true;
  };
  // Chunk 0: scattered; chunk 1: absent; chunk 2: full; chunk 3: runs across words;
  // chunk 4: absent; the tail: the very last block.
  for (int i = 0; i < 3000; ++i) set(random() % 32768, 1);
  set(2 * 32768, 32768);
  for (uint64_t b = 3 * 32768; b < 4 * 32768; b += 1000) set(b + 50, 30);
  set(blocks - 1, 1);

  BlockRank rank(bits);
  uint64_t before = 0;
  for (uint64_t b = 0; b < blocks; ++b) {
    ASSERT_EQ(rank.OwnedBefore(b), before) << "block " << b;
    before += owned[b];
  }
  EXPECT_EQ(rank.owned_total(), before);
  EXPECT_EQ(rank.OwnedBefore(blocks + 5000), before);  // past the end: everything
}

TEST(BlockRankTest, AnEmptyLayerRanksEverythingZero) {
  OwnershipBits bits(1000);
  BlockRank rank(bits);
  EXPECT_EQ(rank.OwnedBefore(0), 0u);
  EXPECT_EQ(rank.OwnedBefore(63999), 0u);
  EXPECT_EQ(rank.owned_total(), 0u);
}

}  // namespace
}  // namespace engine
