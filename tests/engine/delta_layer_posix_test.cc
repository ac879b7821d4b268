// SPDX-License-Identifier: Apache-2.0
// The delta layer on real files: the map file's bitmap is sparse, and reopening reads
// only the pages that hold data (SEEK_DATA), so bits anywhere must come back.
#include <gtest/gtest.h>

#include <chrono>

#include "common/storage.h"
#include "fs/engine/delta_layer.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

TEST(DeltaLayerPosixTest, BitsAnywhereInASparseBitmapSurviveReopening) {
  testing_support::TempDir dir;
  const DeltaPaths paths{dir / "D.delta", dir / "D.map"};
  const uint64_t capacity = uint64_t{64} << 30;  // 2^24 blocks, a 2 MiB bitmap
  const uint64_t blocks = capacity / kBlockBytes;
  // First and last block, both sides of chunk and page boundaries, and a run across one.
  const std::vector<std::pair<uint64_t, uint64_t>> runs = {
      {0, 1}, {32767, 2}, {5'000'000, 70'000}, {blocks - 65, 1}, {blocks - 1, 1}};
  {
    auto layer = DeltaLayer::Create(common::PosixStorage(), paths, DeltaHeader::ForCapacity(capacity));
    ASSERT_TRUE(layer) << layer.error().message();
    for (auto [first, count] : runs) layer.value()->MarkOwned(first, count);
    ASSERT_TRUE(layer.value()->Close().ok());
  }
  EXPECT_LT(testing_support::AllocatedBytes(paths.map), 1u << 20);  // still sparse
  auto layer = DeltaLayer::Open(common::PosixStorage(), paths, /*writable=*/false);
  ASSERT_TRUE(layer) << layer.error().message();
  uint64_t expected = 0;
  for (auto [first, count] : runs) {
    expected += count;
    bool owned = false;
    EXPECT_EQ(layer.value()->RunLength(first, count, &owned), count) << first;
    EXPECT_TRUE(owned) << first;
    if (first > 0) {
      EXPECT_FALSE(layer.value()->IsOwned(first - 1)) << first;
    }
  }
  EXPECT_EQ(layer.value()->owned_blocks(), expected);
  // An unowned run spanning untouched chunks is found in one call.
  bool owned = true;
  EXPECT_EQ(layer.value()->RunLength(32769, blocks), 5'000'000u - 32769);
  EXPECT_EQ(layer.value()->RunLength(1, blocks, &owned), 32766u);
  EXPECT_FALSE(owned);
}

}  // namespace
}  // namespace engine
