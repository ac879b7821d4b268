// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/layer_stack.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/memory_storage.h"
#include "fs/engine/layer_checksums.h"
#include "tests/engine/fake_lower_layers.h"

namespace engine {
namespace {

using common::MemoryStorage;

constexpr uint64_t kCapacity = 256 * 4096 + 1024;  // a short last block

// A frozen layer owning `blocks`, each filled with byte `fill`.
std::unique_ptr<DeltaLayer> MakeLayer(MemoryStorage& storage, int n,
                                      const std::vector<uint64_t>& blocks, uint8_t fill,
                                      uint64_t capacity = kCapacity) {
  DeltaHeader header = DeltaHeader::ForCapacity(capacity);
  header.layer_id[0] = static_cast<uint8_t>(n);
  const DeltaPaths paths{fmt::format("/l{}.delta", n), fmt::format("/l{}.map", n)};
  auto layer = DeltaLayer::Create(storage, paths, header).value();
  for (uint64_t b : blocks) {
    std::vector<std::byte> data(layer->BlockLength(b), std::byte{fill});
    EXPECT_TRUE(layer->WriteData(b * kBlockBytes, data).ok());
    layer->MarkOwned(b, 1);
  }
  EXPECT_TRUE(layer->Close().ok());
  return DeltaLayer::Open(storage, paths, /*writable=*/false).value();
}

TEST(LayerStackTest, EachBlockComesFromTheTopmostLayerOwningIt) {
  MemoryStorage storage;
  std::vector<std::unique_ptr<DeltaLayer>> frozen;
  frozen.push_back(MakeLayer(storage, 1, {1, 2, 3, 256}, 0xa1));
  frozen.push_back(MakeLayer(storage, 2, {2, 3}, 0xa2));
  frozen.push_back(MakeLayer(storage, 3, {3}, 0xa3));
  auto stack = LayerStack::Create(std::make_unique<fakes::FakeLowerLayers>(kCapacity),
                                  std::move(frozen));
  ASSERT_TRUE(stack) << stack.error().message();
  // One read across base, layer 1, layer 2, layer 3 and the base again.
  std::vector<std::byte> got(5 * kBlockBytes);
  ASSERT_TRUE(stack.value()->Read(0, got).ok());
  auto block = [&](int b) { return std::span(got).subspan(b * kBlockBytes, kBlockBytes); };
  EXPECT_EQ(block(0)[5], fakes::LowerPattern(5));
  EXPECT_EQ(block(1)[0], std::byte{0xa1});
  EXPECT_EQ(block(2)[4095], std::byte{0xa2});
  EXPECT_EQ(block(3)[0], std::byte{0xa3});
  EXPECT_EQ(block(4)[1], fakes::LowerPattern(4 * kBlockBytes + 1));
  // The short last block, owned by layer 1.
  std::vector<std::byte> tail(1024);
  ASSERT_TRUE(stack.value()->Read(256 * kBlockBytes, tail).ok());
  EXPECT_EQ(tail[1023], std::byte{0xa1});
}

TEST(LayerStackTest, MapReportsLayersDataOverTheBaseHolesAndDiscardsReadAsZeros) {
  MemoryStorage storage;
  std::vector<std::unique_ptr<DeltaLayer>> frozen;
  frozen.push_back(MakeLayer(storage, 1, {4, 5}, 0xb1));
  // Layer 2 owns block 5 with a hole in its data file: a discard.
  {
    DeltaHeader header = DeltaHeader::ForCapacity(kCapacity);
    header.layer_id[0] = 2;
    const DeltaPaths paths{"/l2.delta", "/l2.map"};
    auto layer = DeltaLayer::Create(storage, paths, header).value();
    ASSERT_TRUE(layer->PunchData(5 * kBlockBytes, kBlockBytes).ok());
    layer->MarkOwned(5, 1);
    ASSERT_TRUE(layer->Close().ok());
    frozen.push_back(DeltaLayer::Open(storage, paths, false).value());
  }
  auto stack = LayerStack::Create(
      std::make_unique<fakes::FakeLowerLayers>(
          kCapacity, std::vector<fakes::FakeLowerLayers::Hole>{{0, kCapacity}}),
      std::move(frozen));
  ASSERT_TRUE(stack);
  auto run = stack.value()->Map(0, kCapacity);
  ASSERT_TRUE(run);
  EXPECT_FALSE(run.value().data);
  EXPECT_EQ(run.value().length_bytes, 4 * kBlockBytes);
  run = stack.value()->Map(4 * kBlockBytes, kCapacity);
  EXPECT_TRUE(run.value().data);
  EXPECT_EQ(run.value().length_bytes, kBlockBytes);
  // (MemoryStorage keeps no holes, so the discarded block maps as data here; the real
  // file system's SEEK_HOLE case is covered by the mount tests.) It reads as zeros.
  std::vector<std::byte> got(kBlockBytes, std::byte{1});
  ASSERT_TRUE(stack.value()->Read(5 * kBlockBytes, got).ok());
  EXPECT_EQ(got[0], std::byte{0});
}

TEST(LayerStackTest, RefusesALayerOfAnotherSizeAndTooDeepAChain) {
  MemoryStorage storage;
  std::vector<std::unique_ptr<DeltaLayer>> frozen;
  frozen.push_back(MakeLayer(storage, 1, {}, 0, kCapacity + 4096));
  auto stack = LayerStack::Create(std::make_unique<fakes::FakeLowerLayers>(kCapacity),
                                  std::move(frozen));
  ASSERT_FALSE(stack);
  EXPECT_EQ(stack.error().code(), EINVAL);

  std::vector<std::unique_ptr<DeltaLayer>> deep;
  for (int i = 0; i < 256; ++i) deep.push_back(MakeLayer(storage, 1000 + i, {}, 0, 8192));
  stack = LayerStack::Create(std::make_unique<fakes::FakeLowerLayers>(8192), std::move(deep));
  ASSERT_FALSE(stack);
  EXPECT_NE(stack.error().message().find("deeper than the 255"), std::string::npos);
}

TEST(LayerChecksumsTest, ScrubFindsTheBlockThatChanged) {
  MemoryStorage storage;
  auto layer = MakeLayer(storage, 1, {0, 7, 8, 9, 256}, 0xc1);
  ASSERT_TRUE(WriteLayerChecksums(storage, *layer, "/l1.sums").ok());
  auto clean = ScrubLayer(storage, *layer, "/l1.sums");
  ASSERT_TRUE(clean) << clean.error().message();
  EXPECT_EQ(clean.value().checked_blocks, 5u);
  EXPECT_TRUE(clean.value().bad_blocks.empty());

  // Flip one byte of block 8 in the data file behind the layer's back.
  auto data = storage.GetFile("/l1.delta").value();
  data[8 * kBlockBytes + 100] = std::byte{0};
  storage.SetFile("/l1.delta", data);
  auto reopened = DeltaLayer::Open(storage, {"/l1.delta", "/l1.map"}, false).value();
  auto bad = ScrubLayer(storage, *reopened, "/l1.sums");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad.value().bad_blocks, std::vector<uint64_t>{8});
}

TEST(LayerChecksumsTest, ChecksumsOfAnotherLayerOrDamagedAreRefused) {
  MemoryStorage storage;
  auto one = MakeLayer(storage, 1, {1}, 0xd1);
  auto two = MakeLayer(storage, 2, {1}, 0xd2);
  ASSERT_TRUE(WriteLayerChecksums(storage, *one, "/l1.sums").ok());
  auto other = CheckChecksumHeader(storage, *two, "/l1.sums");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.message().find("belongs to another layer"), std::string::npos);

  auto bytes = storage.GetFile("/l1.sums").value();
  bytes[17] ^= std::byte{1};
  storage.SetFile("/l1.sums", bytes);
  auto damaged = CheckChecksumHeader(storage, *one, "/l1.sums");
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.message().find("/l1.sums: checksum file header is damaged"),
            std::string::npos);
  // An existing file is never overwritten.
  EXPECT_EQ(WriteLayerChecksums(storage, *one, "/l1.sums").code(), EEXIST);
}

}  // namespace
}  // namespace engine
