// SPDX-License-Identifier: Apache-2.0
// Corrupt streamOptimized images: a missing or broken footer, and grain markers that lie
// about their size or LBA or hold zlib data that inflates wrongly. Each must fail with
// EIO (ENOTSUP for an unsupported variant) naming the file and the structure.

#include <gtest/gtest.h>

#include <cerrno>

#include "common/memory_storage.h"
#include "tests/vmdk/disk_test_util.h"
#include "tests/vmdk/sparse_image_builder.h"
#include "vmdk/sparse_header.h"

namespace vmdk_test {
namespace {

constexpr uint64_t kGrain = 64 * 1024;
constexpr size_t kFlagsAt = 8, kGdOffsetAt = 56;

class StreamCorruptionTest : public ::testing::Test {
 protected:
  StreamCorruptionTest() {
    // Grain 7 (random bytes) compresses to more than a grain; grain 1 to a few hundred
    // bytes and is laid out last, just before the grain tables.
    builder_.SetGrain(7, PatternBytes(kGrain, 7)).SetGrain(1, FilledBytes(kGrain, 0x5a));
    image_ = builder_.BuildStream("s.vmdk", {.gd_at_end = true, .footer = true});
  }

  common::Status Check(const Bytes& bytes) {
    storage_.SetFile("s.vmdk", bytes);
    return OpenMapAndRead(storage_, "s.vmdk");
  }
  uint64_t MarkerAt(uint64_t grain) const { return image_.layout.grain_offset_bytes.at(grain); }
  uint32_t MarkerSize(uint64_t grain) const {
    uint32_t size = 0;
    for (int i = 3; i >= 0; --i) size = size << 8 | uint8_t(image_.bytes[MarkerAt(grain) + 8 + i]);
    return size;
  }
  Bytes WithMarkerSize(uint64_t grain, uint32_t size) const {
    Bytes b = image_.bytes;
    PutLe32(b, MarkerAt(grain) + 8, size);
    return b;
  }

  SparseImageBuilder builder_{4096};
  Image image_;
  common::MemoryStorage storage_;
};

TEST_F(StreamCorruptionTest, IntactStreamOpensAndReads) {
  ASSERT_GT(MarkerSize(7), kGrain);
  EXPECT_TRUE(Check(image_.bytes).ok());
}

TEST_F(StreamCorruptionTest, GdAtEndWithoutFooterIsRefused) {
  Image no_footer = builder_.BuildStream("s.vmdk", {.gd_at_end = true, .footer = false});
  EXPECT_TRUE(FailsWith(Check(no_footer.bytes), EIO, {"s.vmdk", "footer"}));
}

TEST_F(StreamCorruptionTest, TruncatedStreamLosesItsFooterAndIsRefused) {
  for (uint64_t size : {uint64_t{600}, MarkerAt(1) + 100, uint64_t(image_.bytes.size() - 512)}) {
    Bytes b(image_.bytes.begin(), image_.bytes.begin() + size);
    EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk"})) << size;
  }
}

TEST_F(StreamCorruptionTest, FooterThatAlsoSaysGdAtEndIsRefused) {
  Bytes b = image_.bytes;
  PutLe64(b, image_.layout.footer_offset_bytes + kGdOffsetAt, vmdk::kGdAtEnd);
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk", "footer has no grain directory offset"}));
}

TEST_F(StreamCorruptionTest, FooterWithBadMagicIsRefused) {
  Bytes b = image_.bytes;
  PutLe32(b, image_.layout.footer_offset_bytes, 0);
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk", "stream footer", "magic"}));
}

TEST_F(StreamCorruptionTest, EndOfStreamMarkerWithValueIsNotAFooterTail) {
  Bytes b = image_.bytes;
  PutLe64(b, b.size() - 512, 5);
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk", "stream footer not found"}));
}

TEST_F(StreamCorruptionTest, GdAtEndWithoutCompressionFlagIsRefused) {
  Bytes b = image_.bytes;
  PutLe32(b, kFlagsAt, vmdk::kFlagValidNewlineDetection);
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk", "grain directory is at the end"}));
}

TEST_F(StreamCorruptionTest, CompressedGrainsWithoutMarkersAreUnsupported) {
  Image front = builder_.BuildStream("s.vmdk", {.gd_at_end = false, .footer = false});
  PutLe32(front.bytes, kFlagsAt, vmdk::kFlagValidNewlineDetection | vmdk::kFlagCompressed);
  EXPECT_TRUE(FailsWith(Check(front.bytes), ENOTSUP, {"s.vmdk", "without grain markers"}));
}

TEST_F(StreamCorruptionTest, MarkerSizeAboveTwoGrainsIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithMarkerSize(7, 3 * kGrain)), EIO,
                        {"s.vmdk", "compressed grain at sector", "claims 196608 bytes"}));
}

TEST_F(StreamCorruptionTest, MarkerSizePastEndOfFileIsRefused) {
  uint64_t left = image_.bytes.size() - (MarkerAt(1) + 12);
  ASSERT_LT(left, 2 * kGrain);
  EXPECT_TRUE(FailsWith(Check(WithMarkerSize(1, uint32_t(left + 1))), EIO,
                        {"s.vmdk", "compressed grain at sector", "file ends"}));
}

TEST_F(StreamCorruptionTest, MarkerSizeZeroIsRefused) {
  EXPECT_TRUE(FailsWith(Check(WithMarkerSize(7, 0)), EIO, {"s.vmdk", "claims 0 bytes"}));
}

TEST_F(StreamCorruptionTest, MarkerSizeTooSmallFailsToInflate) {
  EXPECT_TRUE(
      FailsWith(Check(WithMarkerSize(7, MarkerSize(7) - 20)), EIO, {"s.vmdk", "does not inflate"}));
}

TEST_F(StreamCorruptionTest, CorruptDeflateDataFailsToInflate) {
  Bytes b = image_.bytes;
  for (size_t i = 40; i < 60; ++i) b[MarkerAt(7) + i] ^= std::byte{0x55};
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk", "does not inflate"}));
}

TEST_F(StreamCorruptionTest, GrainInflatingShortOfAGrainIsRefused) {
  builder_.SetStreamPayload(1, FilledBytes(1000, 0x5a));
  EXPECT_TRUE(FailsWith(Check(builder_.BuildStream("s.vmdk", {}).bytes), EIO,
                        {"s.vmdk", "inflates to 1000 bytes, expected 65536"}));
}

TEST_F(StreamCorruptionTest, GrainInflatingBeyondAGrainIsRefused) {
  builder_.SetStreamPayload(1, FilledBytes(2 * kGrain, 0x5a));
  EXPECT_TRUE(FailsWith(Check(builder_.BuildStream("s.vmdk", {}).bytes), EIO,
                        {"s.vmdk", "does not inflate", "larger than a grain"}));
}

TEST_F(StreamCorruptionTest, MarkerWithWrongLbaIsRefused) {
  Bytes b = image_.bytes;
  PutLe64(b, MarkerAt(7), 999);
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk", "is for sector 999, expected 896"}));
}

TEST_F(StreamCorruptionTest, GrainTableEntryAtEndOfStreamMarkerIsRefused) {
  Bytes b = image_.bytes;
  PutLe32(b, image_.layout.gt_offset_bytes.at(0) + 7 * 4, uint32_t(b.size() / 512 - 1));
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk", "grain marker", "is for sector 0"}));
}

TEST_F(StreamCorruptionTest, GrainTableEntryPastEndOfFileIsRefused) {
  Bytes b = image_.bytes;
  PutLe32(b, image_.layout.gt_offset_bytes.at(0) + 7 * 4, uint32_t(b.size() / 512));
  EXPECT_TRUE(FailsWith(Check(b), EIO, {"s.vmdk", "grain table 0 entry 7"}));
}

}  // namespace
}  // namespace vmdk_test
