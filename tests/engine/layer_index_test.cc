// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/layer_index.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace engine {
namespace {

constexpr uint64_t kChunk = LayerIndex::kBlocksPerChunk;

TEST(LayerIndexTest, EveryBlockStartsOnTheBase) {
  LayerIndex index(3 * kChunk + 5);
  uint8_t owner = 9;
  EXPECT_EQ(index.RunLength(0, index.block_count(), &owner), index.block_count());
  EXPECT_EQ(owner, 0);
  EXPECT_EQ(index.mixed_chunk_bytes(), 0u);
}

TEST(LayerIndexTest, LaterAssignmentsWinAndRunsStopAtTheNextOwner) {
  LayerIndex index(4 * kChunk);
  index.Assign(10, 20, 1);   // blocks 10-29: layer 1
  index.Assign(25, 10, 2);   // blocks 25-34: layer 2 over it
  uint8_t owner = 0;
  EXPECT_EQ(index.RunLength(0, 100, &owner), 10u);
  EXPECT_EQ(owner, 0);
  EXPECT_EQ(index.RunLength(10, 100, &owner), 15u);
  EXPECT_EQ(owner, 1);
  EXPECT_EQ(index.RunLength(25, 100, &owner), 10u);
  EXPECT_EQ(owner, 2);
  EXPECT_EQ(index.RunLength(35, 100, &owner), 100u);  // capped by max_blocks
  EXPECT_EQ(owner, 0);
  EXPECT_EQ(index.Owner(29), 2);
  EXPECT_EQ(index.Owner(24), 1);
}

TEST(LayerIndexTest, WholeChunksCostOneByteAndRunsCrossThem) {
  LayerIndex index(4 * kChunk);
  index.Assign(kChunk, 2 * kChunk, 3);
  EXPECT_EQ(index.mixed_chunk_bytes(), 0u);
  uint8_t owner = 0;
  EXPECT_EQ(index.RunLength(kChunk, 4 * kChunk, &owner), 2 * kChunk);
  EXPECT_EQ(owner, 3);
  // A partial assignment splits one chunk; compaction folds it back once it is uniform.
  index.Assign(0, 7, 1);
  EXPECT_EQ(index.mixed_chunk_bytes(), kChunk);
  index.Assign(0, kChunk, 1);
  index.Compact();
  EXPECT_EQ(index.mixed_chunk_bytes(), 0u);
  EXPECT_EQ(index.RunLength(0, 4 * kChunk, &owner), kChunk);
  EXPECT_EQ(owner, 1);
}

TEST(LayerIndexTest, AShortLastChunkIsHandled) {
  LayerIndex index(kChunk + 3);
  index.Assign(kChunk, 3, 4);
  EXPECT_EQ(index.mixed_chunk_bytes(), 0u);  // the whole (short) chunk
  uint8_t owner = 0;
  EXPECT_EQ(index.RunLength(kChunk - 1, 10, &owner), 1u);
  EXPECT_EQ(index.RunLength(kChunk, 10, &owner), 3u);
  EXPECT_EQ(owner, 4);
}

TEST(LayerIndexTest, AgreesWithAWalkOverRandomLayers) {
  const uint64_t blocks = 3 * kChunk + 100;
  LayerIndex index(blocks);
  std::vector<uint8_t> expected(blocks, 0);
  std::mt19937_64 random(7);
  for (uint8_t layer = 1; layer <= 32; ++layer) {
    for (int i = 0; i < 40; ++i) {
      uint64_t first = random() % blocks;
      uint64_t count = 1 + random() % 300;
      index.Assign(first, count, layer);
      for (uint64_t b = first; b < std::min(blocks, first + count); ++b) expected[b] = layer;
    }
  }
  index.Compact();
  for (uint64_t b = 0; b < blocks;) {
    uint8_t owner = 0;
    uint64_t run = index.RunLength(b, blocks - b, &owner);
    ASSERT_GT(run, 0u);
    for (uint64_t i = b; i < b + run; ++i) ASSERT_EQ(expected[i], owner) << "block " << i;
    if (b + run < blocks) {
      ASSERT_NE(expected[b + run], owner);
    }
    b += run;
  }
}

}  // namespace
}  // namespace engine
