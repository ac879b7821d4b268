// SPDX-License-Identifier: Apache-2.0
// DeltaLayer's ownership bits: marking, runs across bitmap words, the short last block,
// and runs measured while other threads mark.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "common/memory_storage.h"
#include "fs/engine/delta_layer.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

constexpr uint64_t kCapacity = 4096 * 4096;  // 4096 blocks: 64 bitmap words

class DeltaLayerBitsTest : public ::testing::Test {
 protected:
  std::unique_ptr<DeltaLayer> CreateLayer() {
    auto layer = DeltaLayer::Create(storage_, {"/c/D.delta", "/c/D.map"},
                                    DeltaHeader::ForCapacity(kCapacity));
    EXPECT_TRUE(layer) << layer.error().message();
    return layer ? std::move(layer).value() : nullptr;
  }

  common::MemoryStorage storage_;
};

TEST_F(DeltaLayerBitsTest, MarkOwnedSetsExactlyTheMarkedBlocksAcrossWordBoundaries) {
  auto layer = CreateLayer();
  ASSERT_TRUE(layer);
  layer->MarkOwned(60, 11);     // 60-70: words 0 and 1
  layer->MarkOwned(127, 3);     // 127-129: words 1 and 2
  layer->MarkOwned(1000, 1000); // a run of 1000 over 16 words
  layer->MarkOwned(4095, 1);    // the last block
  std::set<uint64_t> owned;
  for (uint64_t b = 60; b <= 70; ++b) owned.insert(b);
  for (uint64_t b = 127; b <= 129; ++b) owned.insert(b);
  for (uint64_t b = 1000; b < 2000; ++b) owned.insert(b);
  owned.insert(4095);
  for (uint64_t b = 0; b < layer->block_count(); ++b) {
    ASSERT_EQ(layer->IsOwned(b), owned.count(b) == 1) << "block " << b;
  }
}

TEST_F(DeltaLayerBitsTest, RunLengthStopsWhereOwnershipChangesOrAtTheLimit) {
  auto layer = CreateLayer();
  ASSERT_TRUE(layer);
  layer->MarkOwned(60, 11);
  layer->MarkOwned(127, 3);
  layer->MarkOwned(1000, 1000);
  EXPECT_EQ(layer->RunLength(0, 5000), 60u);
  EXPECT_EQ(layer->RunLength(59, 5000), 1u);
  EXPECT_EQ(layer->RunLength(60, 5000), 11u);
  EXPECT_EQ(layer->RunLength(63, 5000), 8u);
  EXPECT_EQ(layer->RunLength(64, 5000), 7u);
  EXPECT_EQ(layer->RunLength(65, 3), 3u);
  EXPECT_EQ(layer->RunLength(71, 5000), 56u);  // 71-126
  EXPECT_EQ(layer->RunLength(126, 5000), 1u);
  EXPECT_EQ(layer->RunLength(127, 5000), 3u);
  EXPECT_EQ(layer->RunLength(128, 1), 1u);
  EXPECT_EQ(layer->RunLength(130, 5000), 870u);  // 130-999
  EXPECT_EQ(layer->RunLength(1000, 5000), 1000u);
  EXPECT_EQ(layer->RunLength(1001, 999), 999u);
  EXPECT_EQ(layer->RunLength(1500, 5000), 500u);
  EXPECT_EQ(layer->RunLength(1999, 5000), 1u);
  EXPECT_EQ(layer->RunLength(2000, 5000), 2096u) << "clamped to the block count";
  EXPECT_EQ(layer->RunLength(4094, 100), 2u);
  layer->MarkOwned(0, 4096);
  EXPECT_EQ(layer->RunLength(0, 10000), 4096u);
  EXPECT_EQ(layer->RunLength(4095, 10000), 1u);
}

// 1 GiB + 512 bytes: 2^18 full blocks and one of 512 bytes, whose bit is alone in the
// bitmap's last word. A sparse file on the real file system, so nothing big is allocated.
TEST_F(DeltaLayerBitsTest, LastBlockOfCapacityNotMultipleOfBlockIsShort) {
  testing_support::TempDir dir;
  const DeltaPaths paths{dir / "D.delta", dir / "D.map"};
  const uint64_t capacity = (uint64_t{1} << 30) + 512;
  const uint64_t last = uint64_t{1} << 18;
  {
    auto layer = DeltaLayer::Create(common::PosixStorage(), paths,
                                    DeltaHeader::ForCapacity(capacity));
    ASSERT_TRUE(layer) << layer.error().message();
    DeltaLayer& l = *layer.value();
    EXPECT_EQ(l.block_count(), last + 1);
    EXPECT_EQ(l.BlockLength(0), 4096u);
    EXPECT_EQ(l.BlockLength(last - 1), 4096u);
    EXPECT_EQ(l.BlockLength(last), 512u);
    EXPECT_EQ(l.RunLength(last - 70, 1000), 71u);
    l.MarkOwned(last, 1);
    EXPECT_TRUE(l.IsOwned(last));
    EXPECT_FALSE(l.IsOwned(last - 1));
    EXPECT_EQ(l.RunLength(last - 70, 1000), 70u);
    EXPECT_EQ(l.RunLength(last, 1000), 1u);
    ASSERT_TRUE(l.Close().ok());
  }
  EXPECT_EQ(testing_support::ReadFileBytes(paths.map).size(), 4096u + 36864u);
  auto reopened = DeltaLayer::Open(common::PosixStorage(), paths, false);
  ASSERT_TRUE(reopened) << reopened.error().message();
  EXPECT_TRUE(reopened.value()->IsOwned(last));
  EXPECT_EQ(reopened.value()->RunLength(0, last + 1), last);
}

// RunLength of at least one block is never empty, even when `first` is marked while it
// looks: callers step through a range by the runs it returns (a run of 0 makes CowDisk
// compute a negative length for a range that starts inside a block). One thread marks
// blocks one by one; another keeps measuring the run at the block being marked.
TEST_F(DeltaLayerBitsTest, RunLengthIsNeverEmptyWhileItsFirstBlockIsBeingMarked) {
  testing_support::TempDir dir;
  const uint64_t blocks = uint64_t{1} << 18;  // a sparse 1 GiB data file
  auto created = DeltaLayer::Create(common::PosixStorage(), {dir / "D.delta", dir / "D.map"},
                                    DeltaHeader::ForCapacity(blocks * 4096));
  ASSERT_TRUE(created) << created.error().message();
  DeltaLayer& layer = *created.value();
  std::atomic<uint64_t> next{0};  // the block being marked
  std::atomic<bool> looking{false}, done{false};
  std::thread marker([&] {
    while (!looking) std::this_thread::yield();
    for (uint64_t b = 0; b < blocks; ++b) {
      next.store(b);
      // Let the other thread look a few times before the mark.
      volatile int spins = 0;
      while (spins < 100) spins = spins + 1;
      layer.MarkOwned(b, 1);
    }
    done = true;
  });
  uint64_t empty_runs = 0, looks = 0;
  looking = true;
  while (!done) {
    uint64_t first = next.load();
    bool owned = false;
    if (layer.RunLength(first, 64, &owned) == 0 && empty_runs++ == 0) {
      ADD_FAILURE() << "RunLength(" << first << ", 64) = 0 (owned " << owned << ", now "
                    << layer.IsOwned(first) << ")";
    }
    ++looks;
  }
  marker.join();
  EXPECT_EQ(empty_runs, 0u) << "of " << looks << " looks at the block being marked";
}

TEST_F(DeltaLayerBitsTest, HasUnflushedMarksOnlyForNewMarksSinceFlush) {
  auto layer = CreateLayer();
  ASSERT_TRUE(layer);
  EXPECT_FALSE(layer->HasUnflushedMarks());
  layer->MarkOwned(5, 1);
  EXPECT_TRUE(layer->HasUnflushedMarks());
  ASSERT_TRUE(layer->Flush().ok());
  EXPECT_FALSE(layer->HasUnflushedMarks());
  layer->MarkOwned(5, 1);  // already owned and persisted
  EXPECT_FALSE(layer->HasUnflushedMarks());
  layer->MarkOwned(4, 2);
  EXPECT_TRUE(layer->HasUnflushedMarks());
}

}  // namespace
}  // namespace engine
