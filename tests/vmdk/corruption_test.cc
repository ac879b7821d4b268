// SPDX-License-Identifier: Apache-2.0
// Corrupt hosted sparse (KDMV) and COWD images: truncated files, overwritten header
// fields and table entries. Each must fail with a specific errno and a message naming
// the file and the field, and never crash. Streams: stream_corruption_test.cc; chains:
// chain_corruption_test.cc.

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>

#include "common/memory_storage.h"
#include "tests/vmdk/disk_test_util.h"
#include "tests/vmdk/sparse_image_builder.h"
#include "vmdk/disk.h"
#include "vmdk/sparse_header.h"

namespace vmdk_test {
namespace {

constexpr uint64_t kGrain = 64 * 1024;

// Byte offsets of KDMV header fields (vmdk-format.md section 5.1).
constexpr size_t kVersionAt = 4, kFlagsAt = 8, kCapacityAt = 12, kGrainSizeAt = 20;
constexpr size_t kDescriptorOffsetAt = 28, kDescriptorSizeAt = 36, kGtesPerGtAt = 44;
constexpr size_t kGdOffsetAt = 56, kNewlineAt = 73, kCompressAt = 77;

// Time bounds are looser under sanitizers.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kSlowdown = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr double kSlowdown = 4;
#else
constexpr double kSlowdown = 1;
#endif
#else
constexpr double kSlowdown = 1;
#endif

class CorruptionTest : public ::testing::Test {
 protected:
  CorruptionTest() {
    builder_.SetGrain(0, PatternBytes(kGrain, 1)).SetGrain(5, PatternBytes(kGrain, 2));
    image_ = builder_.BuildMonolithic("bad.vmdk");
  }

  // Opens `bytes` as bad.vmdk, maps and reads the whole disk: the first failure.
  common::Status Check(const Bytes& bytes) {
    storage_.SetFile("bad.vmdk", bytes);
    return OpenMapAndRead(storage_, "bad.vmdk");
  }
  Bytes TruncatedTo(uint64_t size) const {
    return Bytes(image_.bytes.begin(), image_.bytes.begin() + size);
  }
  Bytes WithLe32(size_t offset, uint32_t value) const {
    Bytes b = image_.bytes;
    PutLe32(b, offset, value);
    return b;
  }
  Bytes WithLe64(size_t offset, uint64_t value) const {
    Bytes b = image_.bytes;
    PutLe64(b, offset, value);
    return b;
  }

  SparseImageBuilder builder_{4096};
  Image image_;
  common::MemoryStorage storage_;
};

TEST_F(CorruptionTest, IntactImageOpensAndReads) { EXPECT_TRUE(Check(image_.bytes).ok()); }

TEST_F(CorruptionTest, TruncatedInsideHeaderFailsNamingTheHeader) {
  EXPECT_TRUE(FailsWith(Check(TruncatedTo(300)), EIO, {"bad.vmdk", "sparse header"}));
}

TEST_F(CorruptionTest, TruncatedInsideDescriptorFailsNamingTheDescriptor) {
  EXPECT_TRUE(FailsWith(Check(TruncatedTo(image_.layout.descriptor_offset_bytes + 700)), EIO,
                        {"bad.vmdk", "embedded descriptor"}));
}

TEST_F(CorruptionTest, TruncatedInsideGrainDirectoryFailsNamingTheDirectory) {
  EXPECT_TRUE(FailsWith(Check(TruncatedTo(image_.layout.gd_offset_bytes + 2)), EIO,
                        {"bad.vmdk", "grain directory"}));
}

TEST_F(CorruptionTest, TruncatedInsideGrainTableFailsNamingTheDirectoryEntry) {
  EXPECT_TRUE(FailsWith(Check(TruncatedTo(image_.layout.gt_offset_bytes.at(0) + 100)), EIO,
                        {"bad.vmdk", "grain directory entry 0"}));
}

TEST_F(CorruptionTest, TruncatedInsideGrainFailsNamingTheTableEntry) {
  EXPECT_TRUE(FailsWith(Check(TruncatedTo(image_.layout.grain_offset_bytes.at(5) + 1000)), EIO,
                        {"bad.vmdk", "grain table 0 entry 5"}));
}

TEST_F(CorruptionTest, EmptyFileIsNotADescriptor) {
  EXPECT_TRUE(FailsWith(Check({}), EINVAL, {"bad.vmdk"}));
}

TEST_F(CorruptionTest, BadMagicIsNotAVmdk) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(0, 0x44444444)), EINVAL, {"bad.vmdk", "magic"}));
}

TEST_F(CorruptionTest, Version4IsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(kVersionAt, 4)), EIO, {"bad.vmdk", "version 4"}));
}

TEST_F(CorruptionTest, GrainSizeZeroIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe64(kGrainSizeAt, 0)), EIO, {"bad.vmdk", "grain size 0"}));
}

TEST_F(CorruptionTest, GrainSizeNotPowerOfTwoIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe64(kGrainSizeAt, 96)), EIO, {"bad.vmdk", "grain size 96"}));
}

TEST_F(CorruptionTest, HugeGrainSizeIsRefused) {
  EXPECT_TRUE(
      FailsWith(Check(WithLe64(kGrainSizeAt, 1ULL << 40)), EIO, {"bad.vmdk", "grain size"}));
}

TEST_F(CorruptionTest, ZeroGtesPerGrainTableIsRefused) {
  EXPECT_TRUE(
      FailsWith(Check(WithLe32(kGtesPerGtAt, 0)), EIO, {"bad.vmdk", "entries per grain table"}));
}

TEST_F(CorruptionTest, HugeGtesPerGrainTableIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(kGtesPerGtAt, 1u << 24)), EIO,
                        {"bad.vmdk", "entries per grain table"}));
}

TEST_F(CorruptionTest, Capacity2To63IsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe64(kCapacityAt, 1ULL << 63)), EIO, {"bad.vmdk", "capacity"}));
}

TEST_F(CorruptionTest, NewlineBytesMangledByTextTransferAreRefused) {
  Bytes b = image_.bytes;
  b[kNewlineAt + 2] = std::byte{'\n'};  // "\r\n" became "\n\n"
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"bad.vmdk", "newline"}));
}

TEST_F(CorruptionTest, UnknownIncompatibleFlagIsUnsupported) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(kFlagsAt, vmdk::kFlagValidNewlineDetection | 1u << 20)),
                        ENOTSUP, {"bad.vmdk", "incompatible flags"}));
}

TEST_F(CorruptionTest, UnknownCompatibleFlagIsIgnored) {
  EXPECT_TRUE(Check(WithLe32(kFlagsAt, vmdk::kFlagValidNewlineDetection | 1u << 9)).ok());
}

TEST_F(CorruptionTest, MarkersFlagWithoutCompressionIsRefused) {
  EXPECT_TRUE(
      FailsWith(Check(WithLe32(kFlagsAt, vmdk::kFlagMarkers)), EIO, {"bad.vmdk", "markers"}));
}

TEST_F(CorruptionTest, UnknownCompressionAlgorithmIsUnsupported) {
  Bytes b = WithLe32(kFlagsAt, vmdk::kFlagCompressed | vmdk::kFlagMarkers);
  PutLe16(b, kCompressAt, 7);
  EXPECT_TRUE(FailsWith(Check(b), ENOTSUP, {"bad.vmdk", "compression algorithm 7"}));
}

TEST_F(CorruptionTest, DescriptorOffsetPastEndOfFileIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe64(kDescriptorOffsetAt, 100000)), EIO,
                        {"bad.vmdk", "embedded descriptor"}));
}

TEST_F(CorruptionTest, HugeDescriptorSizeIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe64(kDescriptorSizeAt, 1ULL << 40)), EIO,
                        {"bad.vmdk", "embedded descriptor"}));
}

// Offsets are sectors: one whose byte offset wraps past 2^64 must not alias sector 1.
TEST_F(CorruptionTest, DescriptorOffsetThatOverflowsInBytesIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe64(kDescriptorOffsetAt, (1ULL << 55) + 1)), EIO,
                        {"bad.vmdk", "embedded descriptor"}));
}

TEST_F(CorruptionTest, GrainDirectoryOffsetThatOverflowsInBytesIsRefused) {
  EXPECT_TRUE(
      FailsWith(Check(WithLe64(kGdOffsetAt, (1ULL << 55) + image_.layout.gd_offset_bytes / 512)),
                EIO, {"bad.vmdk", "grain directory"}));
}

TEST_F(CorruptionTest, GrainDirectoryPastEndOfFileIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe64(kGdOffsetAt, 1ULL << 30)), EIO,
                        {"bad.vmdk", "grain directory at byte"}));
}

TEST_F(CorruptionTest, GrainDirectoryInsideHeaderIsRefused) {
  EXPECT_TRUE(
      FailsWith(Check(WithLe64(kGdOffsetAt, 0)), EIO, {"bad.vmdk", "grain directory at byte 0"}));
}

TEST_F(CorruptionTest, GrainDirectoryEntryPastEndOfFileIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(image_.layout.gd_offset_bytes, 1u << 30)), EIO,
                        {"bad.vmdk", "grain directory entry 0"}));
}

TEST_F(CorruptionTest, GrainTableEntryPastEndOfFileIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(image_.layout.gt_offset_bytes.at(0) + 5 * 4, 1u << 30)), EIO,
                        {"bad.vmdk", "grain table 0 entry 5"}));
}

TEST_F(CorruptionTest, GrainTableEntryIntoTheHeaderIsRefusedForCowdOnly) {
  // Sector 1 means "zeroed grain" in KDMV whatever the version, so it is legal there.
  EXPECT_TRUE(Check(WithLe32(image_.layout.gt_offset_bytes.at(0) + 7 * 4, 1)).ok());
}

TEST_F(CorruptionTest, GrainCountOverflowFromHugeCapacityWithTinyGrainIsRefused) {
  Bytes b = WithLe64(kCapacityAt, vmdk::kMaxCapacitySectors);
  PutLe64(b, kGrainSizeAt, 1);
  PutLe32(b, kGtesPerGtAt, 1);  // 2^37 grain tables, a 512 GiB directory
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"bad.vmdk", "grain directory of"}));
}

// Every directory entry of a 256 GiB disk with 1-sector grains and 65536-entry tables
// points at one all-zero table: a 300 KiB file declaring 2^29 grains. Mapping the whole
// disk must cost time in proportion to the file (or the file must be refused), not to the
// grains it declares: the same trick in an 8 MiB file declares 64 TiB of 1-sector grains.
// Found at about 7 s in Release (more under sanitizers); a fixed reader takes well under
// a second, so the bound below is loose.
TEST_F(CorruptionTest, MapOfDirectoryEntriesSharingOneTableIsRefusedOrFast) {
  SparseImageBuilder b(uint64_t{1} << 29, 1, 65536);
  Image image = b.SkipEmptyTables().BuildMonolithic("bad.vmdk");
  const uint64_t table_at = image.bytes.size();
  image.bytes.resize(table_at + 65536 * 4);
  for (uint64_t i = 0; i < image.layout.gd_entries; ++i) {
    PutLe32(image.bytes, image.layout.gd_offset_bytes + i * 4, uint32_t(table_at / 512));
  }
  storage_.SetFile("bad.vmdk", image.bytes);
  auto disk = vmdk::Disk::Open(storage_, "bad.vmdk");
  if (!disk) {
    EXPECT_TRUE(FailsWith(disk.error(), EIO, {"bad.vmdk"}));
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  auto m = disk.value()->Map(0, disk.value()->capacity_bytes());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m.value().length_bytes, disk.value()->capacity_bytes());
  EXPECT_LT(seconds, kSlowdown * 2.0) << "mapping a " << image.bytes.size() << "-byte file";
}

TEST_F(CorruptionTest, LoneExtentWithBadMagicIsNotASparseExtent) {
  Bytes split = builder_.BuildSplitExtent().bytes;
  PutLe32(split, 0, 0x44444444);
  storage_.SetFile("d-s001.vmdk", split);
  storage_.SetFile("d.vmdk",
                   DescriptorText("twoGbMaxExtentSparse", {}, {"RW 4096 SPARSE \"d-s001.vmdk\""}));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "d.vmdk"), EIO, {"d-s001.vmdk", "magic"}));
}

TEST_F(CorruptionTest, SeSparseExtentIsUnsupported) {
  Bytes sesparse(4096);
  PutLe64(sesparse, 0, 0xcafebabe);
  storage_.SetFile("d-sesparse.vmdk", sesparse);
  storage_.SetFile("d.vmdk",
                   DescriptorText("seSparse", {}, {"RW 4096 SESPARSE \"d-sesparse.vmdk\""}));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "d.vmdk"), ENOTSUP, {"d-sesparse.vmdk"}));
}

TEST_F(CorruptionTest, MissingExtentFileNamesIt) {
  storage_.SetFile(
      "d.vmdk", DescriptorText("twoGbMaxExtentSparse", {}, {"RW 4096 SPARSE \"gone-s001.vmdk\""}));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "d.vmdk"), ENOENT, {"gone-s001.vmdk"}));
}

TEST_F(CorruptionTest, FlatExtentShorterThanItsLineIsRefused) {
  storage_.SetFile("d-flat.vmdk", Bytes(1000 * 512));
  storage_.SetFile("d.vmdk",
                   DescriptorText("monolithicFlat", {}, {"RW 1024 FLAT \"d-flat.vmdk\" 0"}));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "d.vmdk"), EIO, {"d-flat.vmdk"}));
}

TEST_F(CorruptionTest, ExtentsAddingUpPastTheCapacityLimitAreRefused) {
  storage_.SetFile("d.vmdk",
                   DescriptorText("custom", {}, {"RW 137438953472 ZERO", "RW 137438953472 ZERO"}));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "d.vmdk"), EINVAL, {"d.vmdk", "limit"}));
}

// COWD (vmfsSparse): a 10000-sector delta with 1-sector grains needs three directory
// entries (each table covers 4096 grains).
class CowdCorruptionTest : public ::testing::Test {
 protected:
  CowdCorruptionTest() {
    builder_.SetGrain(0, PatternBytes(512, 1)).SetGrain(5000, PatternBytes(512, 2));
    image_ = builder_.BuildCowd();
    storage_.SetFile("esx-000001.vmdk", builder_.CowdDescriptor("esx-000001-delta.vmdk"));
  }
  common::Status Check(const Bytes& bytes) {
    storage_.SetFile("esx-000001-delta.vmdk", bytes);
    return OpenMapAndRead(storage_, "esx-000001.vmdk");
  }
  Bytes WithLe32(size_t offset, uint32_t value) const {
    Bytes b = image_.bytes;
    PutLe32(b, offset, value);
    return b;
  }

  SparseImageBuilder builder_{10000, 1};
  Image image_;
  common::MemoryStorage storage_;
};

TEST_F(CowdCorruptionTest, IntactImageOpensAndReads) { EXPECT_TRUE(Check(image_.bytes).ok()); }

TEST_F(CowdCorruptionTest, TooFewGrainDirectoryEntriesAreRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(24, 2)), EIO,
                        {"esx-000001-delta.vmdk", "2 grain directory entries"}));
}

TEST_F(CowdCorruptionTest, GrainSizeZeroIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(16, 0)), EIO, {"esx-000001-delta.vmdk", "grain size 0"}));
}

TEST_F(CowdCorruptionTest, VersionOtherThanOneIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(4, 2)), EIO, {"esx-000001-delta.vmdk", "version 2"}));
}

TEST_F(CowdCorruptionTest, TruncatedInsideHeaderIsRefused) {
  Bytes b(image_.bytes.begin(), image_.bytes.begin() + 1000);
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"esx-000001-delta.vmdk", "COWD header"}));
}

TEST_F(CowdCorruptionTest, GrainDirectoryPastEndOfFileIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(20, 1u << 20)), EIO,
                        {"esx-000001-delta.vmdk", "grain directory at byte"}));
}

TEST_F(CowdCorruptionTest, GrainDirectoryEntryPastEndOfFileIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(image_.layout.gd_offset_bytes + 4, 1u << 30)), EIO,
                        {"esx-000001-delta.vmdk", "grain directory entry 1"}));
}

TEST_F(CowdCorruptionTest, GrainTableEntryIntoTheHeaderIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithLe32(image_.layout.gt_offset_bytes.at(0) + 3 * 4, 1)), EIO,
                        {"esx-000001-delta.vmdk", "grain table 0 entry 3"}));
}

TEST_F(CowdCorruptionTest, DeltaOpenedWithoutItsDescriptorIsRefused) {
  storage_.SetFile("esx-000001-delta.vmdk", image_.bytes);
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "esx-000001-delta.vmdk"), EINVAL,
                        {"esx-000001-delta.vmdk", "COWD"}));
}

}  // namespace
}  // namespace vmdk_test
