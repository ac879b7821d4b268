// SPDX-License-Identifier: Apache-2.0
// Reading single-link sparse images (monolithicSparse, split extent, streamOptimized,
// COWD) built in memory, through Disk::Open and SparseExtent::Open.

#include "vmdk/sparse_extent.h"

#include <gtest/gtest.h>

#include "common/memory_storage.h"
#include "tests/vmdk/disk_test_util.h"
#include "tests/vmdk/sparse_image_builder.h"
#include "vmdk/disk.h"

namespace vmdk_test {
namespace {

constexpr uint64_t kGrain = 64 * 1024;  // default 128-sector grain

class SparseExtentTest : public ::testing::Test {
 protected:
  // Stores `image` and opens it as a disk.
  std::unique_ptr<vmdk::Disk> Open(const std::string& path, const Image& image) {
    storage_.SetFile(path, image.bytes);
    return OpenOk(storage_, path);
  }

  common::MemoryStorage storage_;
};

TEST_F(SparseExtentTest, MonolithicReadsGrainsInAllocationOrderAndZerosForHoles) {
  SparseImageBuilder b(4096);  // 2 MiB, 32 grains
  b.SetGrain(31, PatternBytes(kGrain, 31)).SetGrain(0, PatternBytes(kGrain, 0));
  b.SetGrain(5, FilledBytes(100, 0xab));
  auto disk = Open("mono.vmdk", b.BuildMonolithic("mono.vmdk"));
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->capacity_bytes(), 2u << 20);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
  std::vector<MapRun> expected = {{kData, kGrain, 0},
                                  {kUnallocated, 4 * kGrain, -1},
                                  {kData, kGrain, 0},
                                  {kUnallocated, 25 * kGrain, -1},
                                  {kData, kGrain, 0}};
  EXPECT_EQ(MapAll(*disk), expected);
}

TEST_F(SparseExtentTest, AdjacentDataGrainsMapAsOneRunCappedByMaxLength) {
  SparseImageBuilder b(1024);
  for (uint64_t g = 2; g < 6; ++g) b.SetGrain(g, PatternBytes(kGrain, g));
  auto disk = Open("a.vmdk", b.BuildMonolithic("a.vmdk"));
  ASSERT_TRUE(disk);
  auto m = disk->Map(2 * kGrain + 512, 10 * kGrain);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.value().state, kData);
  EXPECT_EQ(m.value().length_bytes, 4 * kGrain - 512);
  auto capped = disk->Map(2 * kGrain, 1000);
  ASSERT_TRUE(capped);
  EXPECT_EQ(capped.value().length_bytes, 1000u);
}

TEST_F(SparseExtentTest, CapacityNotMultipleOfGrainClampsLastGrain) {
  SparseImageBuilder b(200);  // 100 KiB: one full grain and 72 sectors of the second
  b.SetGrain(1, PatternBytes(kGrain, 7));
  auto disk = Open("odd.vmdk", b.BuildMonolithic("odd.vmdk"));
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->capacity_bytes(), 200u * 512);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
  std::vector<MapRun> expected = {{kUnallocated, kGrain, -1}, {kData, 72 * 512, 0}};
  EXPECT_EQ(MapAll(*disk), expected);
  EXPECT_EQ(ReadRange(*disk, 200 * 512 - 10, 10), Slice(b.Expected(), 200 * 512 - 10, 10));
  Bytes past(1);
  EXPECT_EQ(disk->Read(200 * 512, past).code(), EINVAL);
}

TEST_F(SparseExtentTest, GrainDirectoryEntryZeroMakesWholeTableUnallocated) {
  // 4 KiB grains, 128 per table: each table covers 512 KiB; three tables.
  SparseImageBuilder b(3072, 8, 128);
  b.SetGrain(300, PatternBytes(4096, 300)).SkipEmptyTables();
  Image image = b.BuildMonolithic("gd0.vmdk");
  ASSERT_EQ(image.layout.gt_offset_bytes.size(), 1u);
  ASSERT_TRUE(image.layout.gt_offset_bytes.count(2));
  auto disk = Open("gd0.vmdk", image);
  ASSERT_TRUE(disk);
  std::vector<MapRun> expected = {
      {kUnallocated, 300 * 4096, -1}, {kData, 4096, 0}, {kUnallocated, (384 - 301) * 4096, -1}};
  EXPECT_EQ(MapAll(*disk), expected);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
}

TEST_F(SparseExtentTest, ZeroedGrainEntryMapsAsZeroAndReadsZeros) {
  SparseImageBuilder b(1024);
  b.SetGrain(0, PatternBytes(kGrain, 1)).SetZeroed(1).SetZeroed(2);
  auto disk = Open("z.vmdk", b.BuildMonolithic("z.vmdk"));
  ASSERT_TRUE(disk);
  std::vector<MapRun> expected = {
      {kData, kGrain, 0}, {kZero, 2 * kGrain, 0}, {kUnallocated, 5 * kGrain, -1}};
  EXPECT_EQ(MapAll(*disk), expected);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
}

TEST_F(SparseExtentTest, UnalignedReadSpanningGrainTablesMatches) {
  SparseImageBuilder b(4096, 8, 128);  // 4 KiB grains, tables of 512 KiB
  for (uint64_t g : {126, 127, 128, 129, 255, 256}) b.SetGrain(g, PatternBytes(4096, g));
  auto disk = Open("span.vmdk", b.BuildMonolithic("span.vmdk"));
  ASSERT_TRUE(disk);
  Bytes all = b.Expected();
  for (auto [offset, length] :
       std::vector<std::pair<uint64_t, size_t>>{{126 * 4096 + 100, 4 * 4096 - 200},
                                                {127 * 4096 + 4095, 2},
                                                {250 * 4096 + 7, 9000},
                                                {0, 1},
                                                {1, 1024 * 1024 - 1}}) {
    EXPECT_EQ(ReadRange(*disk, offset, length), Slice(all, offset, length)) << offset;
  }
}

TEST_F(SparseExtentTest, SplitExtentWithoutDescriptorOpensAsLoneExtentWithWarning) {
  SparseImageBuilder b(1024);
  b.SetGrain(3, PatternBytes(kGrain, 3));
  auto disk = Open("disk-s001.vmdk", b.BuildSplitExtent());
  ASSERT_TRUE(disk);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
  ASSERT_FALSE(disk->links()[0]->warnings().empty());
  EXPECT_NE(disk->links()[0]->warnings()[0].find("no embedded descriptor"), std::string::npos);
}

TEST_F(SparseExtentTest, StreamWithFooterReadsCompressedAndIncompressibleGrains) {
  SparseImageBuilder b(4096);
  // Random bytes compress to more than a grain; a constant fill to a few hundred bytes.
  b.SetGrain(7, PatternBytes(kGrain, 7)).SetGrain(1, FilledBytes(kGrain, 0x5a));
  b.SetGrain(31, PatternBytes(kGrain / 2, 31));
  Image image = b.BuildStream("stream.vmdk", {.gd_at_end = true, .footer = true});
  auto disk = Open("stream.vmdk", image);
  ASSERT_TRUE(disk);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
  std::vector<MapRun> expected = {{kUnallocated, kGrain, -1},      {kData, kGrain, 0},
                                  {kUnallocated, 5 * kGrain, -1},  {kData, kGrain, 0},
                                  {kUnallocated, 23 * kGrain, -1}, {kData, kGrain, 0}};
  EXPECT_EQ(MapAll(*disk), expected);
}

TEST_F(SparseExtentTest, StreamWithRealGdOffsetAndNoFooterReads) {
  SparseImageBuilder b(4096);
  b.SetGrain(2, PatternBytes(kGrain, 2)).SetGrain(20, FilledBytes(kGrain, 0x11));
  auto disk = Open("s.vmdk", b.BuildStream("s.vmdk", {.gd_at_end = false, .footer = false}));
  ASSERT_TRUE(disk);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
}

TEST_F(SparseExtentTest, StreamPartialLastGrainInflatesToValidBytesOnly) {
  SparseImageBuilder b(200);
  b.SetGrain(0, PatternBytes(kGrain, 1)).SetGrain(1, PatternBytes(kGrain, 2));
  auto disk = Open("s.vmdk", b.BuildStream("s.vmdk", {}));
  ASSERT_TRUE(disk);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
}

TEST_F(SparseExtentTest, StreamWithoutEmptyTablesReadsThroughDirectoryZeros) {
  SparseImageBuilder b(3072, 8, 128);
  b.SetGrain(200, PatternBytes(4096, 5)).SetGrain(10, FilledBytes(4096, 3)).SkipEmptyTables();
  Image image = b.BuildStream("s.vmdk", {});
  EXPECT_EQ(image.layout.gt_offset_bytes.size(), 2u);
  auto disk = Open("s.vmdk", image);
  ASSERT_TRUE(disk);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
}

TEST_F(SparseExtentTest, SmallReadsWalkingOneCompressedGrainReturnItsBytes) {
  SparseImageBuilder a(1024), c(1024);
  a.SetGrain(0, PatternBytes(kGrain, 1));
  c.SetGrain(0, PatternBytes(kGrain, 2));
  auto disk_a = Open("a.vmdk", a.BuildStream("a.vmdk", {}));
  auto disk_c = Open("c.vmdk", c.BuildStream("c.vmdk", {}));
  ASSERT_TRUE(disk_a && disk_c);
  // Alternating between two streams must never serve one's grain for the other's.
  for (uint64_t off = 0; off < kGrain; off += 4096) {
    EXPECT_EQ(ReadRange(*disk_a, off, 4096), Slice(a.Expected(), off, 4096)) << off;
    EXPECT_EQ(ReadRange(*disk_c, off, 4096), Slice(c.Expected(), off, 4096)) << off;
  }
}

TEST_F(SparseExtentTest, CowdExtentReadsThroughItsDescriptor) {
  // 1-sector grains: each table covers 4096 sectors; 10000 sectors need three tables.
  SparseImageBuilder b(10000, 1);
  for (uint64_t g : {0, 4095, 4096, 9999, 17}) b.SetGrain(g, PatternBytes(512, g));
  Image image = b.BuildCowd();
  EXPECT_EQ(image.layout.gd_entries, 3u);
  storage_.SetFile("esx-000001-delta.vmdk", image.bytes);
  storage_.SetFile("esx-000001.vmdk", b.CowdDescriptor("esx-000001-delta.vmdk"));
  auto disk = OpenOk(storage_, "esx-000001.vmdk");
  ASSERT_TRUE(disk);
  EXPECT_EQ(ReadAll(*disk), b.Expected());
  std::vector<MapRun> expected = {{kData, 512, 0},     {kUnallocated, 16 * 512, -1},
                                  {kData, 512, 0},     {kUnallocated, 4077 * 512, -1},
                                  {kData, 2 * 512, 0}, {kUnallocated, 5902 * 512, -1},
                                  {kData, 512, 0}};
  EXPECT_EQ(MapAll(*disk), expected);
}

TEST_F(SparseExtentTest, OpenReportsDetailsAndPassesTableCheck) {
  SparseImageBuilder b(4096);
  b.SetGrain(1, PatternBytes(kGrain, 1)).SetZeroed(2);
  storage_.SetFile("d.vmdk", b.BuildMonolithic("d.vmdk").bytes);
  auto file = storage_.Open("d.vmdk", common::OpenMode::kReadOnly);
  ASSERT_TRUE(file);
  auto extent = vmdk::SparseExtent::Open(std::move(file).value(), 4096 * 512);
  ASSERT_TRUE(extent) << extent.error().message();
  EXPECT_TRUE(extent.value()->CheckTables().ok());
  EXPECT_TRUE(extent.value()->warnings().empty());
  vmdk::ExtentDetails details = extent.value()->Details();
  ASSERT_FALSE(details.empty());
  EXPECT_EQ(details[0], (std::pair<std::string, std::string>{"format", "KDMV"}));
}

TEST_F(SparseExtentTest, HeaderCapacityDifferentFromExtentLineWarnsAndReadsZerosPastIt) {
  SparseImageBuilder b(1024);
  b.SetGrain(7, PatternBytes(kGrain, 7));
  Image image = b.BuildMonolithic("w.vmdk");
  // The descriptor claims 2048 sectors while the header says 1024.
  std::string text(reinterpret_cast<const char*>(image.bytes.data()) +
                   image.layout.descriptor_offset_bytes);
  size_t at = text.find("RW 1024 SPARSE");
  ASSERT_NE(at, std::string::npos);
  image.bytes[image.layout.descriptor_offset_bytes + at + 3] = std::byte{'2'};
  image.bytes[image.layout.descriptor_offset_bytes + at + 5] = std::byte{'4'};
  image.bytes[image.layout.descriptor_offset_bytes + at + 6] = std::byte{'8'};
  auto disk = Open("w.vmdk", image);
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->capacity_bytes(), 2048u * 512);
  ASSERT_FALSE(disk->links()[0]->warnings().empty());
  EXPECT_NE(disk->links()[0]->warnings()[0].find("header capacity"), std::string::npos);
  Bytes expected = b.Expected();
  expected.resize(2048 * 512);
  EXPECT_EQ(ReadAll(*disk), expected);
}

}  // namespace
}  // namespace vmdk_test
