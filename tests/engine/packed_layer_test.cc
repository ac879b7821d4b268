// SPDX-License-Identifier: Apache-2.0
// Packed layers on real files (holes matter: a discarded block stays a hole): what they
// hold, how they read and map, and how they refuse damage and misuse.
#include "fs/engine/packed_layer.h"

#include <gtest/gtest.h>

#include <boost/endian/conversion.hpp>
// Header-only XXH3, to write an older checksum file by hand.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <vector>

#include "common/storage.h"
#include "fs/engine/layer_checksums.h"
#include "fs/engine/layer_merge.h"
#include "fs/engine/layer_stack.h"
#include "tests/engine/fake_lower_layers.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

constexpr uint64_t kCapacity = 3000 * uint64_t{kBlockBytes} + 512;  // a short last block
constexpr uint64_t kBlocks = (kCapacity + kBlockBytes - 1) / kBlockBytes;

std::byte Fill(uint8_t layer, uint64_t block) {
  return std::byte(static_cast<uint8_t>(1 + (layer * 31 + block) % 250));
}

class PackedLayerTest : public ::testing::Test {
 protected:
  common::Storage& storage_ = common::PosixStorage();
  testing_support::TempDir dir_;

  DeltaPaths Paths(const std::string& name) { return {dir_ / (name + ".data"), dir_ / (name + ".map")}; }

  // A sparse layer owning `blocks` (each filled with its pattern) and `discarded` (holes).
  std::unique_ptr<DeltaLayer> Sparse(uint8_t id, const std::set<uint64_t>& blocks,
                                     const std::set<uint64_t>& discarded = {}) {
    DeltaHeader header = DeltaHeader::ForCapacity(kCapacity);
    header.layer_id[0] = id;
    const DeltaPaths paths = Paths(fmt::format("sparse{}", id));
    auto layer = DeltaLayer::Create(storage_, paths, header).value();
    for (uint64_t b : blocks) {
      std::vector<std::byte> data(layer->BlockLength(b), Fill(id, b));
      EXPECT_TRUE(layer->WriteData(b * kBlockBytes, data).ok());
      layer->MarkOwned(b, 1);
    }
    for (uint64_t b : discarded) {
      EXPECT_TRUE(layer->PunchData(b * kBlockBytes, kBlockBytes).ok());
      layer->MarkOwned(b, 1);
    }
    EXPECT_TRUE(layer->Close().ok());
    return DeltaLayer::Open(storage_, paths, false).value();
  }

  // What a stack of `layers` (bottom first) over the fake base reads, whole.
  std::vector<std::byte> ReadAll(std::vector<std::unique_ptr<DeltaLayer>> layers) {
    auto stack = LayerStack::Create(std::make_unique<fakes::FakeLowerLayers>(kCapacity),
                                    std::move(layers));
    EXPECT_TRUE(stack) << stack.error().message();
    std::vector<std::byte> all(kCapacity);
    // In odd-sized requests, so that they start and end inside blocks and runs.
    for (uint64_t at = 0; at < kCapacity;) {
      const uint64_t n = std::min<uint64_t>(kCapacity - at, 37 * kBlockBytes + 1000);
      EXPECT_TRUE(stack.value()->Read(at, std::span(all).subspan(at, n)).ok()) << at;
      at += n;
    }
    return all;
  }
};

TEST_F(PackedLayerTest, HoldsOnlyTheOwnedBlocksAndReadsAsTheSparseLayerDid) {
  std::mt19937_64 random(3);
  std::set<uint64_t> blocks = {0, 1, 2, 63, 64, 65, kBlocks - 1};
  while (blocks.size() < 700) blocks.insert(random() % kBlocks);
  const std::set<uint64_t> discarded = {5, 6, 2000};
  for (uint64_t b : discarded) blocks.erase(b);
  auto sparse = Sparse(1, blocks, discarded);

  const DeltaLayer* sources[] = {sparse.get()};
  std::vector<uint64_t> progress;
  auto packed = WritePackedLayer(storage_, Paths("packed"), sparse->header(), sources,
                                 {[&](uint64_t done) { progress.push_back(done); }});
  ASSERT_TRUE(packed) << packed.error().message();
  const DeltaLayer& layer = *packed.value();
  EXPECT_TRUE(layer.packed());
  EXPECT_TRUE(layer.header().clean_shutdown);
  EXPECT_EQ(layer.header().layer_id, sparse->header().layer_id);
  EXPECT_EQ(layer.header().generation, sparse->header().generation);
  EXPECT_EQ(layer.owned_blocks(), blocks.size() + discarded.size());
  EXPECT_EQ(std::filesystem::file_size(Paths("packed").data), layer.owned_blocks() * kBlockBytes);
  // Data written (699 blocks less the short last one's tail), not the discarded blocks.
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), (blocks.size() - 1) * kBlockBytes + 512);
  EXPECT_LE(testing_support::AllocatedBytes(Paths("packed").data),
            (blocks.size() + 16) * kBlockBytes);

  std::vector<std::unique_ptr<DeltaLayer>> one;
  one.push_back(std::move(sparse));
  const std::vector<std::byte> want = ReadAll(std::move(one));
  std::vector<std::unique_ptr<DeltaLayer>> other;
  other.push_back(DeltaLayer::Open(storage_, Paths("packed"), false).value());
  EXPECT_TRUE(ReadAll(std::move(other)) == want);

  // Map: a discarded block is a hole (it reads as zeros), a written one data.
  auto reopened = DeltaLayer::Open(storage_, Paths("packed"), false).value();
  auto run = MapOwnedBlocks(*reopened, 5 * kBlockBytes, 7 * kBlockBytes);
  ASSERT_TRUE(run) << run.error().message();
  EXPECT_FALSE(run.value().data);
  EXPECT_EQ(run.value().length_bytes, 2 * kBlockBytes);
  run = MapOwnedBlocks(*reopened, 0, 3 * kBlockBytes);
  EXPECT_TRUE(run.value().data);
  EXPECT_EQ(run.value().length_bytes, 3 * kBlockBytes);
}

TEST_F(PackedLayerTest, TheFirstSourceOwningABlockProvidesIt) {
  auto lower = Sparse(1, {1, 2, 3, 10, 11});
  auto upper = Sparse(2, {2, 11, 12}, {3});
  const DeltaLayer* sources[] = {upper.get(), lower.get()};
  auto merged = WritePackedLayer(storage_, Paths("merged"), upper->header(), sources);
  ASSERT_TRUE(merged) << merged.error().message();
  EXPECT_EQ(merged.value()->owned_blocks(), 6u);  // 1 2 3 10 11 12
  std::vector<std::byte> block(kBlockBytes);
  auto read = [&](uint64_t b) {
    EXPECT_TRUE(merged.value()->ReadData(b * kBlockBytes, block).ok()) << b;
    return block[100];
  };
  EXPECT_EQ(read(1), Fill(1, 1));
  EXPECT_EQ(read(2), Fill(2, 2));
  EXPECT_EQ(read(3), std::byte{0});  // upper discarded it
  EXPECT_EQ(read(10), Fill(1, 10));
  EXPECT_EQ(read(11), Fill(2, 11));
  EXPECT_EQ(read(12), Fill(2, 12));

  // MergeLayers writes the same when asked for a packed result.
  MergeOptions options;
  options.packed = true;
  auto via_merge = MergeLayers(storage_, *lower, *upper, Paths("via-merge"), options);
  ASSERT_TRUE(via_merge) << via_merge.error().message();
  EXPECT_TRUE(via_merge.value()->packed());
  EXPECT_EQ(testing_support::ReadFileBytes(Paths("via-merge").data),
            testing_support::ReadFileBytes(Paths("merged").data));
  EXPECT_EQ(via_merge.value()->header().parent_layer_id, lower->header().parent_layer_id);
}

TEST_F(PackedLayerTest, RefusesWritesReadsOutsideItsBlocksAndATruncatedDataFile) {
  auto sparse = Sparse(1, {4, 5, 9});
  const DeltaLayer* sources[] = {sparse.get()};
  ASSERT_TRUE(WritePackedLayer(storage_, Paths("p"), sparse->header(), sources));

  auto writable = DeltaLayer::Open(storage_, Paths("p"), /*writable=*/true);
  ASSERT_FALSE(writable);
  EXPECT_EQ(writable.error().code(), EROFS);

  auto layer = DeltaLayer::Open(storage_, Paths("p"), false).value();
  std::vector<std::byte> two(2 * kBlockBytes);
  EXPECT_TRUE(layer->ReadData(4 * kBlockBytes, two).ok());
  EXPECT_EQ(layer->ReadData(5 * kBlockBytes, two).code(), EINVAL);  // 6 is not owned
  EXPECT_EQ(layer->ReadData(7 * kBlockBytes, std::span(two).first(10)).code(), EINVAL);

  std::filesystem::resize_file(Paths("p").data, 2 * kBlockBytes);
  auto truncated = DeltaLayer::Open(storage_, Paths("p"), false);
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().code(), EIO);
  EXPECT_NE(truncated.error().message().find("3 owned blocks need"), std::string::npos)
      << truncated.error().message();
}

TEST_F(PackedLayerTest, AnExistingFileIsRefusedAndNothingIsLeftBehind) {
  auto sparse = Sparse(1, {4});
  const DeltaLayer* sources[] = {sparse.get()};
  testing_support::WriteFileBytes(Paths("p").map, {std::byte{1}});
  auto packed = WritePackedLayer(storage_, Paths("p"), sparse->header(), sources);
  ASSERT_FALSE(packed);
  EXPECT_EQ(packed.error().code(), EEXIST);
  EXPECT_FALSE(std::filesystem::exists(Paths("p").data));  // the data file it made is gone
  EXPECT_EQ(std::filesystem::file_size(Paths("p").map), 1u);  // the other file is untouched
}

TEST_F(PackedLayerTest, ChecksumsAreOnePerOwnedBlockAndTheScrubNamesADamagedOne) {
  auto sparse = Sparse(1, {7, 8, 2500, kBlocks - 1});
  const DeltaLayer* sources[] = {sparse.get()};
  auto packed = WritePackedLayer(storage_, Paths("p"), sparse->header(), sources).value();
  const std::string sums = dir_ / "p.sums";
  ASSERT_TRUE(WriteLayerChecksums(storage_, *packed, sums).ok());
  EXPECT_EQ(std::filesystem::file_size(sums), 4096u + 8 * 4);
  auto clean = ScrubLayer(storage_, *packed, sums);
  ASSERT_TRUE(clean) << clean.error().message();
  EXPECT_EQ(clean.value().checked_blocks, 4u);
  EXPECT_TRUE(clean.value().bad_blocks.empty());

  // Block 2500 is the third owned block: the packed file's third 4 KiB.
  auto bytes = testing_support::ReadFileBytes(Paths("p").data);
  bytes[2 * kBlockBytes + 9] ^= std::byte{0x40};
  testing_support::WriteFileBytes(Paths("p").data, bytes);
  auto damaged = DeltaLayer::Open(storage_, Paths("p"), false).value();
  auto bad = ScrubLayer(storage_, *damaged, sums);
  ASSERT_TRUE(bad) << bad.error().message();
  EXPECT_EQ(bad.value().bad_blocks, std::vector<uint64_t>{2500});
  EXPECT_EQ(bad.value().bad_file_offsets, std::vector<uint64_t>{2 * kBlockBytes});
}

// Snapshots taken before packed layers kept their layer sparse and one checksum per block
// of the disk (version 1); verify --full still reads them.
TEST_F(PackedLayerTest, AVersionOneChecksumFileOfASparseLayerIsStillScrubbed) {
  auto sparse = Sparse(1, {3, 900});
  std::vector<std::byte> file(4096 + 8 * kBlocks);
  auto* p = reinterpret_cast<uint8_t*>(file.data());
  std::memcpy(p, "CLNFSSUM", 8);
  boost::endian::store_little_u32(p + 8, 1);
  boost::endian::store_little_u32(p + 12, kBlockBytes);
  boost::endian::store_little_u64(p + 16, kBlocks);
  std::memcpy(p + 24, sparse->header().layer_id.data(), 16);
  boost::endian::store_little_u64(p + 40, XXH3_64bits(p, 4096));
  for (uint64_t b : {3, 900}) {
    std::vector<std::byte> block(kBlockBytes, Fill(1, b));
    boost::endian::store_little_u64(p + 4096 + 8 * b, XXH3_64bits(block.data(), block.size()));
  }
  const std::string sums = dir_ / "v1.sums";
  testing_support::WriteFileBytes(sums, file);
  auto clean = ScrubLayer(storage_, *sparse, sums);
  ASSERT_TRUE(clean) << clean.error().message();
  EXPECT_EQ(clean.value().checked_blocks, 2u);
  EXPECT_TRUE(clean.value().bad_blocks.empty());

  p[4096 + 8 * 900] ^= 1;
  testing_support::WriteFileBytes(sums, file);
  auto bad = ScrubLayer(storage_, *sparse, sums);
  ASSERT_TRUE(bad) << bad.error().message();
  EXPECT_EQ(bad.value().bad_blocks, std::vector<uint64_t>{900});
  EXPECT_EQ(bad.value().bad_file_offsets, std::vector<uint64_t>{900 * kBlockBytes});
}


// The daemon opens packed layers through FrozenLayerStorage: a stack of them reads the
// same whether its layers' pages must come from the device (pieces probed, misses read
// side by side) or are all cached (pieces copied from the layers' mappings).
TEST_F(PackedLayerTest, AStackReadsTheSameFromTheDeviceAndFromResidentLayers) {
  std::mt19937_64 random(11);
  std::vector<std::unique_ptr<DeltaLayer>> sparse;
  for (uint8_t id = 1; id <= 8; ++id) {
    std::set<uint64_t> blocks;
    while (blocks.size() < 200) blocks.insert(random() % kBlocks);
    std::set<uint64_t> discarded = {random() % kBlocks};
    for (uint64_t b : discarded) blocks.erase(b);
    sparse.push_back(Sparse(id, blocks, discarded));
  }
  std::vector<DeltaPaths> packed;
  for (const auto& layer : sparse) {
    const DeltaLayer* sources[] = {layer.get()};
    packed.push_back(Paths(fmt::format("packed{}", layer->header().layer_id[0])));
    ASSERT_TRUE(WritePackedLayer(storage_, packed.back(), layer->header(), sources));
  }
  const std::vector<std::byte> want = ReadAll(std::move(sparse));

  auto open_frozen = [&] {
    std::vector<std::unique_ptr<DeltaLayer>> layers;
    for (const DeltaPaths& paths : packed) {
      layers.push_back(DeltaLayer::Open(common::FrozenLayerStorage(), paths, false).value());
    }
    return layers;
  };
  for (const DeltaPaths& paths : packed) {
    testing_support::DropFromPageCache(paths.data);
  }
  auto cold = open_frozen();
  for (const auto& layer : cold) ASSERT_FALSE(layer->Resident());
  EXPECT_TRUE(ReadAll(std::move(cold)) == want);

  // The layers' files read into the page cache (as a warm host has them).
  for (const DeltaPaths& paths : packed) testing_support::RunShell("cat " + paths.data + " >/dev/null");
  auto warm = open_frozen();
  for (const auto& layer : warm) {
    ASSERT_TRUE(testing_support::Eventually([&] { return layer->Resident(); }));
  }
  EXPECT_TRUE(ReadAll(std::move(warm)) == want);
}

}  // namespace
}  // namespace engine
