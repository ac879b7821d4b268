// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/cow_disk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/memory_storage.h"
#include "tests/engine/cow_disk_fixture.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using common::MemoryStorage;
using fakes::FakeLowerLayers;
using fakes::Filled;

constexpr uint64_t kBlock = 4096;
// 256 whole blocks and a last block of 1536 bytes.
constexpr uint64_t kCapacity = 256 * kBlock + 1536;
constexpr uint64_t kLastBlock = 256;
// Blocks 8-11 and the middle half of block 40 are holes below.
const std::vector<FakeLowerLayers::Hole> kHoles = {{8 * kBlock, 4 * kBlock},
                                                   {40 * kBlock + 1024, 2048}};

class CowDiskTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(storage_, paths_); }

  void Build(common::Storage& storage, const DeltaPaths& paths) {
    auto made = fakes::MakeTestDisk(storage, paths, kCapacity, kHoles);
    disk_ = std::move(made.disk);
    lower_ = made.lower;
    ASSERT_TRUE(disk_);
    model_ = lower_->bytes();
  }

  // Writes through the disk and into the model of what the disk should hold.
  void Write(uint64_t offset, const std::vector<std::byte>& data) {
    common::Status s = disk_->Write(offset, data);
    ASSERT_TRUE(s.ok()) << "write at " << offset << ": " << s.message();
    std::memcpy(model_.data() + offset, data.data(), data.size());
  }
  void Discard(uint64_t offset, uint64_t length) {
    common::Status s = disk_->Discard(offset, length);
    ASSERT_TRUE(s.ok()) << "discard at " << offset << ": " << s.message();
    std::memset(model_.data() + offset, 0, length);
  }
  std::vector<std::byte> Read(uint64_t offset, uint64_t length) {
    std::vector<std::byte> out(length);
    common::Status s = disk_->Read(offset, out);
    EXPECT_TRUE(s.ok()) << s.message();
    return out;
  }

  // The whole disk equals the model, read in one piece and in odd-sized pieces.
  ::testing::AssertionResult MatchesModel() {
    for (uint64_t piece : {kCapacity, uint64_t{3 * kBlock + 1000}, uint64_t{512}}) {
      for (uint64_t at = 0; at < kCapacity; at += piece) {
        uint64_t n = std::min(piece, kCapacity - at);
        auto got = Read(at, n);
        for (uint64_t i = 0; i < n; ++i) {
          if (got[i] != model_[at + i]) {
            return ::testing::AssertionFailure()
                   << "byte " << at + i << " (block " << (at + i) / kBlock << ") reads "
                   << int(got[i]) << ", expected " << int(model_[at + i]);
          }
        }
      }
    }
    return ::testing::AssertionSuccess();
  }
  bool LowerIsUntouched() const {
    return lower_->bytes() == FakeLowerLayers(kCapacity, kHoles).bytes();
  }

  MemoryStorage storage_;
  const DeltaPaths paths_{"/c/D.delta", "/c/D.map"};
  std::unique_ptr<CowDisk> disk_;
  FakeLowerLayers* lower_ = nullptr;
  std::vector<std::byte> model_;
};

TEST_F(CowDiskTest, EmptyDeltaReadsLikeTheLowerLayers) {
  EXPECT_TRUE(MatchesModel());
  EXPECT_EQ(Read(4000, 10000), std::vector(model_.begin() + 4000, model_.begin() + 14000));
  EXPECT_EQ(Read(kCapacity - 512, 512), std::vector(model_.end() - 512, model_.end()));
  EXPECT_TRUE(Read(kCapacity, 0).empty());
}

TEST_F(CowDiskTest, AlignedBlockWritesReadNothingFromBelow) {
  lower_->ResetCounts();
  Write(5 * kBlock, Filled(1, kBlock));
  Write(16 * kBlock, Filled(2, 8 * kBlock));
  Write(14 * kBlock, Filled(3, 6 * kBlock));  // half owned already
  Write(5 * kBlock, Filled(4, kBlock));       // owned
  Write(kLastBlock * kBlock, Filled(5, 1536));  // the whole short last block
  EXPECT_EQ(lower_->read_calls(), 0u);
  EXPECT_TRUE(MatchesModel());
}

TEST_F(CowDiskTest, PartialWriteReadsOneBlockFromBelowOnlyTheFirstTime) {
  lower_->ResetCounts();
  Write(5 * kBlock + 100, Filled(1, 512));
  EXPECT_EQ(lower_->read_calls(), 1u);
  EXPECT_EQ(lower_->read_bytes(), kBlock);
  Write(5 * kBlock + 1000, Filled(2, 1));
  EXPECT_EQ(lower_->read_calls(), 1u) << "the block is owned now";
  Write(20 * kBlock + 3000, Filled(3, 2000));  // the ends of two blocks
  EXPECT_EQ(lower_->read_calls(), 3u);
  EXPECT_EQ(lower_->read_bytes(), 3 * kBlock);
  Write(kCapacity - 512, Filled(4, 512));
  EXPECT_EQ(lower_->read_calls(), 4u);
  EXPECT_EQ(lower_->read_bytes(), 3 * kBlock + 1536) << "the last block is 1536 bytes";
  EXPECT_TRUE(MatchesModel());
}

TEST_F(CowDiskTest, UnalignedWritesReadBackAndLeaveTheLowerLayersUntouched) {
  const std::vector<std::pair<uint64_t, uint64_t>> writes = {
      {3 * 512, 512},                        // one sector
      {2 * kBlock + 777, 1},                 // one byte
      {10 * kBlock + 3000, 2000},            // spans two blocks
      {20 * kBlock + 4000, kBlock + 200},    // spans three blocks
      {kCapacity - 512, 512},                // the last sector
      {9 * kBlock + 5, 100},                 // inside a hole below
      {40 * kBlock + 1000, 100},             // across the edge of a hole below
      {10 * kBlock + 2999, 3},               // again, now owned
  };
  uint64_t seed = 10;
  for (const auto& [offset, length] : writes) {
    Write(offset, Filled(seed++, length));
    EXPECT_TRUE(MatchesModel()) << "after writing " << length << " bytes at " << offset;
  }
  EXPECT_TRUE(LowerIsUntouched());
}

TEST_F(CowDiskTest, PartialWriteToUnownedBlockKeepsTheLowerBytesAroundIt) {
  Write(3 * kBlock + 2000, Filled(1, 10));
  auto block = Read(3 * kBlock, kBlock);
  auto lower = lower_->bytes(3 * kBlock, kBlock);
  EXPECT_TRUE(std::equal(block.begin(), block.begin() + 2000, lower.begin()));
  EXPECT_TRUE(std::equal(block.begin() + 2010, block.end(), lower.begin() + 2010));
  EXPECT_EQ(std::vector(block.begin() + 2000, block.begin() + 2010), Filled(1, 10));
}

TEST_F(CowDiskTest, WriteCoveringTheWholeDiskReadsBackWithoutReadingBelow) {
  lower_->ResetCounts();
  Write(0, Filled(7, kCapacity));
  Write(3 * kBlock + 5, Filled(8, 9000));  // unaligned, over owned blocks
  EXPECT_EQ(lower_->read_calls(), 0u);
  EXPECT_TRUE(MatchesModel());
  EXPECT_TRUE(LowerIsUntouched());
}

TEST_F(CowDiskTest, DiscardedRangesReadZerosAndTheLowerLayersAreUnchanged) {
  Write(30 * kBlock, Filled(1, 2 * kBlock));
  Discard(2 * kBlock, 3 * kBlock);              // whole unowned blocks
  Discard(30 * kBlock, kBlock);                 // a whole owned block
  Discard(31 * kBlock + 10, 20);                // part of an owned block
  Discard(50 * kBlock + 100, 1000);             // part of an unowned block
  Discard(60 * kBlock + 3000, 2 * kBlock);      // spans three blocks, one whole
  Discard(8 * kBlock, kBlock);                  // a hole below
  Discard(kLastBlock * kBlock, 1536);           // the short last block
  EXPECT_TRUE(MatchesModel());
  EXPECT_EQ(Read(2 * kBlock, 3 * kBlock), std::vector<std::byte>(3 * kBlock));
  EXPECT_EQ(Read(kCapacity - 1536, 1536), std::vector<std::byte>(1536));
  EXPECT_TRUE(LowerIsUntouched());

  lower_->ResetCounts();
  Write(3 * kBlock + 100, Filled(2, 50));       // into a discarded block: owned, no copy
  Write(2 * kBlock, Filled(3, kBlock));
  Write(61 * kBlock + 4000, Filled(4, 200));
  Write(kCapacity - 512, Filled(5, 512));
  EXPECT_EQ(lower_->read_calls(), 0u);
  EXPECT_TRUE(MatchesModel());
}

TEST_F(CowDiskTest, DiscardOfTheWholeDiskReadsZerosAndAcceptsWritesAfterwards) {
  Write(7 * kBlock + 3, Filled(1, 5000));
  Discard(0, kCapacity);
  EXPECT_EQ(Read(0, kCapacity), std::vector<std::byte>(kCapacity));
  Write(100, Filled(2, 10000));
  EXPECT_TRUE(MatchesModel());
  EXPECT_TRUE(LowerIsUntouched());
}

// Discard works through long ranges in batches of blocks; the batch edges must not show.
TEST_F(CowDiskTest, DiscardOfMoreBlocksThanOneBatchReadsZerosAndSparesItsNeighbours) {
  constexpr uint64_t kBlocks = 9000;
  auto made = fakes::MakeTestDisk(storage_, {"/c/big.delta", "/c/big.map"}, kBlocks * kBlock);
  ASSERT_TRUE(made.disk);
  const uint64_t begin = 100 * kBlock + 7, length = 8500 * kBlock;
  ASSERT_TRUE(made.disk->Discard(begin, length).ok());
  std::vector<std::byte> all(kBlocks * kBlock);
  ASSERT_TRUE(made.disk->Read(0, all).ok());
  auto lower = made.lower->bytes();
  EXPECT_TRUE(std::equal(all.begin(), all.begin() + begin, lower.begin()));
  EXPECT_TRUE(std::all_of(all.begin() + begin, all.begin() + begin + length,
                          [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_TRUE(std::equal(all.begin() + begin + length, all.end(), lower.begin() + begin + length));
  EXPECT_EQ(made.disk->delta().RunLength(100, kBlocks), 8501u);
}

TEST_F(CowDiskTest, RequestsOutsideTheDiskFailWithEinval) {
  std::vector<std::byte> buf(200);
  EXPECT_EQ(disk_->Read(kCapacity - 100, buf).code(), EINVAL);
  EXPECT_EQ(disk_->Write(kCapacity - 100, buf).code(), EINVAL);
  EXPECT_EQ(disk_->Write(kCapacity + 512, std::span(buf).first(1)).code(), EINVAL);
  EXPECT_EQ(disk_->Discard(kCapacity - 100, 200).code(), EINVAL);
  EXPECT_EQ(disk_->Discard(UINT64_MAX - 10, 20).code(), EINVAL);
  EXPECT_TRUE(MatchesModel());
}

TEST_F(CowDiskTest, CreateRefusesLowerLayersOfAnotherCapacity) {
  auto delta = DeltaLayer::Create(storage_, {"/c/E.delta", "/c/E.map"},
                                  DeltaHeader::ForCapacity(kCapacity));
  ASSERT_TRUE(delta) << delta.error().message();
  auto disk = CowDisk::Create(std::make_unique<FakeLowerLayers>(kCapacity + 512),
                              std::move(delta).value());
  ASSERT_FALSE(disk);
  EXPECT_EQ(disk.error().code(), EINVAL);
}

TEST_F(CowDiskTest, NextDataAndNextHoleFollowTheLowerLayersAndTheDelta) {
  EXPECT_EQ(disk_->NextData(0).value(), 0u);
  EXPECT_EQ(disk_->NextHole(0).value(), 8 * kBlock);
  EXPECT_EQ(disk_->NextHole(5 * kBlock + 7).value(), 8 * kBlock);
  EXPECT_EQ(disk_->NextData(8 * kBlock).value(), 12 * kBlock);
  EXPECT_EQ(disk_->NextHole(12 * kBlock).value(), 40 * kBlock + 1024);
  EXPECT_EQ(disk_->NextData(40 * kBlock + 1024).value(), 40 * kBlock + 3072);
  EXPECT_EQ(disk_->NextHole(40 * kBlock + 3072).value(), kCapacity);
  EXPECT_EQ(disk_->NextData(kCapacity).value(), kCapacity);

  Write(9 * kBlock, Filled(1, kBlock));  // data over a hole below
  EXPECT_EQ(disk_->NextData(8 * kBlock).value(), 9 * kBlock);
  EXPECT_EQ(disk_->NextHole(9 * kBlock).value(), 10 * kBlock);
  EXPECT_EQ(disk_->NextData(10 * kBlock).value(), 12 * kBlock);
  Write(40 * kBlock, Filled(2, 10));  // block 40 is the delta's now, all of it data
  EXPECT_EQ(disk_->NextHole(12 * kBlock).value(), kCapacity);
}

// On a real file system punched blocks of the delta are holes (MemoryStorage only
// zero-fills), so discarded blocks show as holes of the merged disk.
TEST_F(CowDiskTest, NextDataAndNextHoleOnRealFilesSeeDiscardedBlocksAsHoles) {
  testing_support::TempDir dir;
  Build(common::PosixStorage(), {dir / "D.delta", dir / "D.map"});
  Discard(3 * kBlock, 2 * kBlock);            // lower data, discarded
  Write(9 * kBlock, Filled(1, kBlock));       // delta data over a hole below
  Write(10 * kBlock + 7, Filled(2, 100));     // the whole block is copied up
  Discard(20 * kBlock + 100, 200);            // partial: zeros written, still data
  Write(30 * kBlock, Filled(3, kBlock));
  Discard(30 * kBlock, kBlock);               // written, then discarded
  Discard(kLastBlock * kBlock, 1536);
  EXPECT_TRUE(MatchesModel());

  EXPECT_EQ(disk_->NextHole(0).value(), 3 * kBlock);
  EXPECT_EQ(disk_->NextData(3 * kBlock).value(), 5 * kBlock);
  EXPECT_EQ(disk_->NextData(3 * kBlock + 100).value(), 5 * kBlock);
  EXPECT_EQ(disk_->NextHole(5 * kBlock).value(), 8 * kBlock);
  EXPECT_EQ(disk_->NextData(8 * kBlock).value(), 9 * kBlock);
  EXPECT_EQ(disk_->NextHole(9 * kBlock + 50).value(), 11 * kBlock);
  EXPECT_EQ(disk_->NextData(11 * kBlock).value(), 12 * kBlock);
  EXPECT_EQ(disk_->NextHole(12 * kBlock).value(), 30 * kBlock);
  EXPECT_EQ(disk_->NextData(30 * kBlock).value(), 31 * kBlock);
  EXPECT_EQ(disk_->NextHole(31 * kBlock).value(), 40 * kBlock + 1024);
  EXPECT_EQ(disk_->NextData(40 * kBlock + 1500).value(), 40 * kBlock + 3072);
  EXPECT_EQ(disk_->NextHole(41 * kBlock).value(), kLastBlock * kBlock);
  EXPECT_EQ(disk_->NextData(kLastBlock * kBlock).value(), kCapacity);
  EXPECT_EQ(disk_->NextHole(kLastBlock * kBlock + 512).value(), kLastBlock * kBlock + 512);
  EXPECT_TRUE(LowerIsUntouched());
  disk_.reset();  // before its directory goes
}

TEST_F(CowDiskTest, EnospcFromTheDataFileReachesTheWriterAndOldContentsStay) {
  Write(1 * kBlock, Filled(1, kBlock));  // owned before space runs out
  std::atomic<bool> full{true};
  storage_.SetFaultHook([&](MemoryStorage::Op op, const std::string& path) {
    if (full && op == MemoryStorage::Op::kWrite && path == paths_.data) {
      return common::Status::FromErrno(ENOSPC, path);
    }
    return common::Status::Ok();
  });
  const std::vector<std::pair<uint64_t, uint64_t>> refused = {
      {5 * kBlock, kBlock},            // whole unowned block
      {6 * kBlock + 10, 100},          // partial unowned block
      {1 * kBlock + 10, 100},          // owned block
      {1 * kBlock, 3 * kBlock},        // owned and unowned
  };
  uint64_t seed = 20;
  for (const auto& [offset, length] : refused) {
    common::Status s = disk_->Write(offset, Filled(seed++, length));
    EXPECT_EQ(s.code(), ENOSPC) << "write at " << offset << ": " << s.message();
  }
  EXPECT_EQ(disk_->Discard(7 * kBlock + 1, 10).code(), ENOSPC);
  EXPECT_TRUE(MatchesModel());
  EXPECT_FALSE(disk_->delta().IsOwned(5));
  EXPECT_FALSE(disk_->delta().IsOwned(6));
  EXPECT_FALSE(disk_->delta().IsOwned(7));
  EXPECT_TRUE(disk_->Flush().ok());

  full = false;
  for (const auto& [offset, length] : refused) Write(offset, Filled(seed++, length));
  Discard(7 * kBlock + 1, 10);
  EXPECT_TRUE(MatchesModel());
  EXPECT_TRUE(disk_->Flush().ok());
  EXPECT_FALSE(disk_->delta().HasUnflushedMarks());
  storage_.SetFaultHook(nullptr);
}

}  // namespace
}  // namespace engine
