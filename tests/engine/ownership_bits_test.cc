// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/ownership_bits.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace engine {
namespace {

TEST(OwnershipBitsTest, UntouchedChunksReadAsZeroAndAreNotAllocated) {
  OwnershipBits bits(1 << 22);  // a 1 TiB layer
  EXPECT_EQ(bits.Load(0), 0u);
  EXPECT_EQ(bits.Load((1 << 22) - 1), 0u);
  EXPECT_FALSE(bits.ChunkPresent(12345));
  EXPECT_EQ(bits.FetchOr(12345, 0b1010), 0u);
  EXPECT_TRUE(bits.ChunkPresent(12345));
  EXPECT_TRUE(bits.ChunkPresent(12345 / OwnershipBits::kWordsPerChunk * OwnershipBits::kWordsPerChunk));
  EXPECT_FALSE(bits.ChunkPresent(12345 + OwnershipBits::kWordsPerChunk));
  EXPECT_EQ(bits.FetchOr(12345, 0b0110), 0b1010u);
  EXPECT_EQ(bits.Load(12345), 0b1110u);
  EXPECT_EQ(bits.Load(12344), 0u);
}

TEST(OwnershipBitsTest, ThreadsRacingOnANewChunkKeepEveryBit) {
  for (int round = 0; round < 50; ++round) {
    OwnershipBits bits(4096);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&bits, t] { bits.FetchOr(1000, uint64_t{1} << t); });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(bits.Load(1000), 0xffu) << "round " << round;
  }
}

}  // namespace
}  // namespace engine
