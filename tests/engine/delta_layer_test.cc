// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/delta_layer.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/memory_storage.h"
#include "fs/engine/cow_disk.h"
#include "tests/engine/fake_lower_layers.h"

namespace engine {
namespace {

using common::MemoryStorage;
using Op = MemoryStorage::Op;

constexpr uint64_t kCapacity = 4096 * 4096;  // 4096 blocks: 64 bitmap words
// What a file the layer did not create holds.
constexpr std::string_view kForeign = "someone else's";

class DeltaLayerTest : public ::testing::Test {
 protected:
  std::unique_ptr<DeltaLayer> CreateLayer(uint64_t capacity_bytes = kCapacity) {
    DeltaHeader header = DeltaHeader::ForCapacity(capacity_bytes);
    header.layer_id[0] = 0x5a;
    auto layer = DeltaLayer::Create(storage_, paths_, header);
    EXPECT_TRUE(layer) << layer.error().message();
    return layer ? std::move(layer).value() : nullptr;
  }
  std::unique_ptr<DeltaLayer> OpenLayer(bool writable) {
    auto layer = DeltaLayer::Open(storage_, paths_, writable);
    EXPECT_TRUE(layer) << layer.error().message();
    return layer ? std::move(layer).value() : nullptr;
  }
  // The header as the map file holds it now.
  DeltaHeader StoredHeader() {
    auto parsed = ParseDeltaHeader(storage_.GetFile(paths_.map).value());
    EXPECT_TRUE(parsed) << parsed.error().message();
    return parsed ? parsed.value() : DeltaHeader{};
  }
  bool NoFileRemains() {
    return !storage_.GetFile(paths_.data) && !storage_.GetFile(paths_.map);
  }
  // Fails the first `op` on `path` with `code`.
  void FailOnce(Op op, const std::string& path, int code) {
    auto fired = std::make_shared<bool>(false);
    storage_.SetFaultHook([=](Op o, const std::string& p) {
      if (o != op || p != path || *fired) return common::Status::Ok();
      *fired = true;
      return common::Status::FromErrno(code, p);
    });
  }

  MemoryStorage storage_;
  const DeltaPaths paths_{"/clone/.clonefs/D.delta", "/clone/.clonefs/D.map"};
};

TEST_F(DeltaLayerTest, CreateMakesDataFileOfCapacityAndMapOfHeaderPlusBitmap) {
  const uint64_t capacity = (uint64_t{1} << 20) + 512;  // 257 blocks
  auto layer = CreateLayer(capacity);
  ASSERT_TRUE(layer);
  EXPECT_EQ(storage_.GetFile(paths_.data)->size(), capacity);
  EXPECT_EQ(storage_.GetFile(paths_.map)->size(), kDeltaHeaderBytes + 4096);
  EXPECT_EQ(layer->block_count(), 257u);
  EXPECT_TRUE(layer->writable());
  EXPECT_FALSE(layer->was_unclean());
  DeltaHeader stored = StoredHeader();
  EXPECT_EQ(stored.capacity_bytes, capacity);
  EXPECT_EQ(stored.layer_id[0], 0x5a);
  EXPECT_FALSE(stored.clean_shutdown) << "a new layer is open for writing";
}

TEST_F(DeltaLayerTest, CreatedLayerSurvivesAPowerCut) {
  ASSERT_TRUE(CreateLayer());
  storage_.Crash(MemoryStorage::CrashMode::kLoseUnsynced);
  auto reopened = DeltaLayer::Open(storage_, paths_, true);
  ASSERT_TRUE(reopened) << reopened.error().message();
  EXPECT_EQ(reopened.value()->capacity_bytes(), kCapacity);
}

TEST_F(DeltaLayerTest, CreateRefusesExistingDataFileAndTouchesNothing) {
  storage_.SetFile(paths_.data, kForeign);
  auto layer = DeltaLayer::Create(storage_, paths_, DeltaHeader::ForCapacity(kCapacity));
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), EEXIST);
  EXPECT_EQ(storage_.GetFile(paths_.data)->size(), kForeign.size());
  EXPECT_FALSE(storage_.GetFile(paths_.map));
}

TEST_F(DeltaLayerTest, CreateRefusesExistingMapFileAndRemovesTheDataFileItMade) {
  storage_.SetFile(paths_.map, kForeign);
  auto layer = DeltaLayer::Create(storage_, paths_, DeltaHeader::ForCapacity(kCapacity));
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), EEXIST);
  EXPECT_FALSE(storage_.GetFile(paths_.data));
  EXPECT_EQ(storage_.GetFile(paths_.map)->size(), kForeign.size());
}

TEST_F(DeltaLayerTest, CreateLeavesNoFileBehindWhenAnyStepFails) {
  const std::vector<std::pair<Op, std::string>> steps = {
      {Op::kTruncate, paths_.data}, {Op::kSync, paths_.data}, {Op::kTruncate, paths_.map},
      {Op::kWrite, paths_.map},     {Op::kSync, paths_.map}};
  for (const auto& [op, path] : steps) {
    SCOPED_TRACE(testing::Message() << "op " << static_cast<int>(op) << " on " << path);
    FailOnce(op, path, ENOSPC);
    auto layer = DeltaLayer::Create(storage_, paths_, DeltaHeader::ForCapacity(kCapacity));
    ASSERT_FALSE(layer);
    EXPECT_EQ(layer.error().code(), ENOSPC);
    EXPECT_TRUE(NoFileRemains());
  }
  storage_.SetFaultHook(nullptr);
  EXPECT_TRUE(CreateLayer()) << "a failed Create leaves the paths free";
}

// Create must only ever remove files it created itself.
TEST_F(DeltaLayerTest, CreateFailureKeepsAnExistingMapFileItDidNotCreate) {
  storage_.SetFile(paths_.map, kForeign);
  FailOnce(Op::kTruncate, paths_.data, EIO);
  auto layer = DeltaLayer::Create(storage_, paths_, DeltaHeader::ForCapacity(kCapacity));
  ASSERT_FALSE(layer);
  EXPECT_FALSE(storage_.GetFile(paths_.data));
  ASSERT_TRUE(storage_.GetFile(paths_.map)) << "Create removed a map file it did not create";
  EXPECT_EQ(storage_.GetFile(paths_.map)->size(), kForeign.size());
}

TEST_F(DeltaLayerTest, CreateRejectsCapacityThatIsNotWholeSectors) {
  auto layer = DeltaLayer::Create(storage_, paths_, DeltaHeader::ForCapacity(kCapacity + 100));
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), EINVAL);
  EXPECT_TRUE(NoFileRemains());
}

TEST_F(DeltaLayerTest, OpenOfMissingMapFailsWithEnoent) {
  auto layer = DeltaLayer::Open(storage_, paths_, false);
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), ENOENT);
  EXPECT_NE(layer.error().message().find(paths_.map), std::string::npos);
}

TEST_F(DeltaLayerTest, OpenOfMissingDataFileFailsWithEnoent) {
  ASSERT_TRUE(CreateLayer());
  ASSERT_TRUE(storage_.Remove(paths_.data).ok());
  auto layer = DeltaLayer::Open(storage_, paths_, true);
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), ENOENT);
}

TEST_F(DeltaLayerTest, OpenOfMapWithFlippedHeaderByteFailsWithEioNamingTheFile) {
  { ASSERT_TRUE(CreateLayer()); }
  for (size_t at : {0, 16, 60, 96, 104, 3000}) {
    SCOPED_TRACE(testing::Message() << "byte " << at);
    auto map = storage_.GetFile(paths_.map).value();
    auto bad = map;
    bad[at] ^= std::byte{0x04};
    storage_.SetFile(paths_.map, bad);
    for (bool writable : {false, true}) {
      auto layer = DeltaLayer::Open(storage_, paths_, writable);
      ASSERT_FALSE(layer);
      EXPECT_EQ(layer.error().code(), EIO);
      EXPECT_NE(layer.error().message().find(paths_.map), std::string::npos)
          << layer.error().message();
    }
    EXPECT_EQ(storage_.GetFile(paths_.map).value(), bad) << "nothing is repaired silently";
    storage_.SetFile(paths_.map, map);
  }
  EXPECT_TRUE(OpenLayer(true));
}

TEST_F(DeltaLayerTest, OpenOfDataFileWithWrongSizeFailsWithEio) {
  { ASSERT_TRUE(CreateLayer()); }
  for (uint64_t size : {kCapacity - 4096, kCapacity + 512, uint64_t{0}}) {
    storage_.SetFile(paths_.data, std::vector<std::byte>(size));
    auto layer = DeltaLayer::Open(storage_, paths_, true);
    ASSERT_FALSE(layer);
    EXPECT_EQ(layer.error().code(), EIO);
    EXPECT_NE(layer.error().message().find(paths_.data), std::string::npos)
        << layer.error().message();
  }
}

TEST_F(DeltaLayerTest, OpenOfMapShorterThanItsBitmapFailsWithEio) {
  { ASSERT_TRUE(CreateLayer()); }
  auto map = storage_.GetFile(paths_.map).value();
  map.resize(kDeltaHeaderBytes + 100);
  storage_.SetFile(paths_.map, map);
  auto layer = DeltaLayer::Open(storage_, paths_, false);
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), EIO);
  EXPECT_NE(layer.error().message().find(paths_.map), std::string::npos);
}

TEST_F(DeltaLayerTest, FlushPersistsBitsThatSurviveAPowerCutAndBumpsGeneration) {
  uint64_t generation = 0;
  {
    auto layer = CreateLayer();
    ASSERT_TRUE(layer);
    generation = layer->header().generation;
    layer->MarkOwned(60, 11);
    layer->MarkOwned(3000, 1000);
    ASSERT_TRUE(layer->Flush().ok());
    EXPECT_EQ(layer->header().generation, generation + 1);
    EXPECT_EQ(StoredHeader().generation, generation + 1);
    layer->MarkOwned(127, 3);
    ASSERT_TRUE(layer->Flush().ok());
    EXPECT_EQ(layer->header().generation, generation + 2);
  }
  storage_.Crash(MemoryStorage::CrashMode::kLoseUnsynced);
  auto layer = OpenLayer(false);
  ASSERT_TRUE(layer);
  EXPECT_EQ(layer->header().generation, generation + 2);
  EXPECT_EQ(layer->RunLength(60, 100), 11u);
  EXPECT_EQ(layer->RunLength(127, 100), 3u);
  EXPECT_EQ(layer->RunLength(3000, 5000), 1000u);
  EXPECT_FALSE(layer->IsOwned(59));
}

TEST_F(DeltaLayerTest, MarksNotFlushedAreLostAfterAPowerCut) {
  {
    auto layer = CreateLayer();
    ASSERT_TRUE(layer);
    layer->MarkOwned(10, 1);
    ASSERT_TRUE(layer->Flush().ok());
    layer->MarkOwned(11, 1);
    layer->MarkOwned(2000, 64);
  }
  storage_.Crash(MemoryStorage::CrashMode::kLoseUnsynced);
  auto layer = OpenLayer(true);
  ASSERT_TRUE(layer);
  EXPECT_TRUE(layer->was_unclean());
  EXPECT_TRUE(layer->IsOwned(10));
  EXPECT_FALSE(layer->IsOwned(11));
  EXPECT_FALSE(layer->IsOwned(2000));
  EXPECT_EQ(layer->RunLength(11, 5000), 4085u);
}

TEST_F(DeltaLayerTest, FlushSyncsDataBeforeItPersistsAnyBit) {
  auto layer = CreateLayer();
  ASSERT_TRUE(layer);
  std::vector<std::pair<Op, std::string>> ops;
  std::mutex ops_mutex;
  storage_.SetFaultHook([&](Op op, const std::string& path) {
    std::lock_guard lock(ops_mutex);
    ops.emplace_back(op, path);
    return common::Status::Ok();
  });
  layer->MarkOwned(7, 1);
  ASSERT_TRUE(layer->Flush().ok());
  storage_.SetFaultHook(nullptr);
  ASSERT_FALSE(ops.empty());
  EXPECT_EQ(ops.front(), std::make_pair(Op::kSync, paths_.data));
  for (size_t i = 1; i < ops.size(); ++i) {
    EXPECT_TRUE(ops[i].first == Op::kMapReserve || ops[i].first == Op::kMapFlush) << i;
  }
}

// On a full file system the bitmap page a bit lands in may not be allocatable: the
// flush fails with ENOSPC (a store into the mapping would have been a SIGBUS), persists
// nothing, and a later flush, once there is space, persists the marks it kept.
TEST_F(DeltaLayerTest, FlushOnAFullFileSystemFailsWithEnospcAndALaterOneSucceeds) {
  auto layer = CreateLayer();
  ASSERT_TRUE(layer);
  const uint64_t generation = layer->header().generation;
  layer->MarkOwned(3000, 2);
  FailOnce(Op::kMapReserve, paths_.map, ENOSPC);
  EXPECT_EQ(layer->Flush().code(), ENOSPC);
  EXPECT_TRUE(layer->HasUnflushedMarks());
  EXPECT_EQ(StoredHeader().generation, generation);
  storage_.Crash(MemoryStorage::CrashMode::kKeepAll);
  EXPECT_FALSE(OpenLayer(false)->IsOwned(3000)) << "a bit was stored in an unreserved page";

  storage_.SetFaultHook(nullptr);
  ASSERT_TRUE(layer->Flush().ok());
  EXPECT_FALSE(layer->HasUnflushedMarks());
  storage_.Crash(MemoryStorage::CrashMode::kLoseUnsynced);
  auto reopened = OpenLayer(false);
  ASSERT_TRUE(reopened);
  EXPECT_TRUE(reopened->IsOwned(3000));
  EXPECT_TRUE(reopened->IsOwned(3001));
}

// Linux may drop the dirty pages an fdatasync failed to write, so a later sync that
// "succeeds" proves nothing: the failure is sticky and no bit is ever persisted after it.
TEST_F(DeltaLayerTest, FailedDataSyncPersistsNoBitAndEveryLaterFlushFails) {
  auto layer = CreateLayer();
  ASSERT_TRUE(layer);
  const uint64_t generation = layer->header().generation;
  layer->MarkOwned(100, 3);
  FailOnce(Op::kSync, paths_.data, EIO);
  common::Status failed = layer->Flush();
  EXPECT_EQ(failed.code(), EIO);
  EXPECT_TRUE(layer->HasUnflushedMarks());
  EXPECT_EQ(StoredHeader().generation, generation);
  storage_.Crash(MemoryStorage::CrashMode::kKeepAll);  // even if every page was written back
  EXPECT_FALSE(OpenLayer(false)->IsOwned(100)) << "a bit reached the disk before its data";

  layer->MarkOwned(200, 1);
  EXPECT_EQ(layer->Flush().code(), EIO) << "the sync hook no longer fails, the layer still does";
  EXPECT_EQ(layer->Close().code(), EIO);
  EXPECT_TRUE(layer->HasUnflushedMarks());
  storage_.Crash(MemoryStorage::CrashMode::kKeepAll);
  auto reopened = OpenLayer(false);
  ASSERT_TRUE(reopened);
  EXPECT_FALSE(reopened->IsOwned(100));
  EXPECT_FALSE(reopened->IsOwned(200));
  EXPECT_FALSE(reopened->header().clean_shutdown);
  EXPECT_EQ(reopened->header().generation, generation);
}

TEST_F(DeltaLayerTest, CloseSetsTheCleanFlagAndReopeningIsClean) {
  {
    auto layer = CreateLayer();
    ASSERT_TRUE(layer);
    layer->MarkOwned(42, 1);
    ASSERT_TRUE(layer->Close().ok());
    EXPECT_FALSE(layer->writable());
    EXPECT_FALSE(layer->HasUnflushedMarks());
  }
  storage_.Crash(MemoryStorage::CrashMode::kLoseUnsynced);
  EXPECT_TRUE(StoredHeader().clean_shutdown);
  auto layer = OpenLayer(true);
  ASSERT_TRUE(layer);
  EXPECT_FALSE(layer->was_unclean());
  EXPECT_TRUE(layer->IsOwned(42));
}

TEST_F(DeltaLayerTest, OpenForWritingClearsTheCleanFlagDurably) {
  { ASSERT_TRUE(CreateLayer()->Close().ok()); }
  {
    auto layer = OpenLayer(true);
    ASSERT_TRUE(layer);
    EXPECT_FALSE(layer->was_unclean());
  }
  storage_.Crash(MemoryStorage::CrashMode::kLoseUnsynced);
  EXPECT_FALSE(StoredHeader().clean_shutdown);
  auto layer = OpenLayer(true);
  ASSERT_TRUE(layer);
  EXPECT_TRUE(layer->was_unclean());
}

TEST_F(DeltaLayerTest, LayerNeverClosedIsReportedUncleanWhenOpenedForWriting) {
  {
    auto layer = CreateLayer();
    ASSERT_TRUE(layer);
    layer->MarkOwned(1, 1);
    ASSERT_TRUE(layer->Flush().ok());
  }
  auto layer = OpenLayer(true);
  ASSERT_TRUE(layer);
  EXPECT_TRUE(layer->was_unclean());
  EXPECT_TRUE(layer->IsOwned(1)) << "an unclean layer needs no repair";
}

TEST_F(DeltaLayerTest, ReadOnlyOpenChangesNothingAndRefusesWritesThroughCowDisk) {
  { ASSERT_TRUE(CreateLayer()->Close().ok()); }
  const auto map_before = storage_.GetFile(paths_.map).value();
  auto layer = OpenLayer(false);
  ASSERT_TRUE(layer);
  EXPECT_FALSE(layer->writable());
  EXPECT_EQ(storage_.GetFile(paths_.map).value(), map_before) << "read-only open wrote";
  auto disk = CowDisk::Create(std::make_unique<fakes::FakeLowerLayers>(kCapacity),
                              std::move(layer));
  ASSERT_TRUE(disk) << disk.error().message();
  std::vector<std::byte> block(4096, std::byte{1});
  EXPECT_EQ(disk.value()->Write(0, block).code(), EROFS);
  EXPECT_EQ(disk.value()->Write(100, std::span(block).first(10)).code(), EROFS);
  EXPECT_EQ(disk.value()->Discard(0, 4096).code(), EROFS);
  EXPECT_TRUE(disk.value()->Flush().ok());
  ASSERT_TRUE(disk.value()->Read(0, block).ok());
  EXPECT_EQ(block[0], fakes::LowerPattern(0));
  EXPECT_EQ(storage_.GetFile(paths_.map).value(), map_before);
}

}  // namespace
}  // namespace engine
