// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/delta_header.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace engine {
namespace {

std::vector<std::byte> Encoded(const DeltaHeader& h) {
  std::vector<std::byte> out(kDeltaHeaderBytes);
  EncodeDeltaHeader(h, out);
  return out;
}

DeltaHeader Sample() {
  DeltaHeader h = DeltaHeader::ForCapacity((uint64_t{1} << 30) + 512);
  h.layer_id[0] = 0x11;
  h.parent_layer_id[15] = 0x22;
  h.parent_fingerprint[7] = 0x33;
  h.clean_shutdown = false;
  h.generation = 42;
  return h;
}

TEST(DeltaHeaderTest, GeometryFollowsCapacity) {
  DeltaHeader h = DeltaHeader::ForCapacity((uint64_t{1} << 30) + 512);
  EXPECT_EQ(h.block_count, (uint64_t{1} << 18) + 1);
  EXPECT_EQ(h.bitmap_bytes, 36864u);  // 32 KiB + 1 bit, rounded to a page
  EXPECT_EQ(h.map_file_bytes(), 4096u + 36864u);
}

TEST(DeltaHeaderTest, RoundTripsEveryField) {
  DeltaHeader h = Sample();
  auto bytes = Encoded(h);
  EXPECT_EQ(std::memcmp(bytes.data(), "CLNFSMAP", 8), 0);
  auto parsed = ParseDeltaHeader(bytes);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed.value().capacity_bytes, h.capacity_bytes);
  EXPECT_EQ(parsed.value().layer_id, h.layer_id);
  EXPECT_EQ(parsed.value().parent_layer_id, h.parent_layer_id);
  EXPECT_EQ(parsed.value().parent_fingerprint, h.parent_fingerprint);
  EXPECT_FALSE(parsed.value().clean_shutdown);
  EXPECT_EQ(parsed.value().generation, 42u);
}

TEST(DeltaHeaderTest, AnyFlippedByteFailsTheChecksum) {
  auto good = Encoded(Sample());
  for (size_t at : {0, 9, 16, 40, 50, 70, 90, 96, 104, 200, 4095}) {
    auto bad = good;
    bad[at] ^= std::byte{0x01};
    auto parsed = ParseDeltaHeader(bad);
    ASSERT_FALSE(parsed) << "byte " << at;
    EXPECT_EQ(parsed.error().code(), EIO) << "byte " << at;
  }
}

TEST(DeltaHeaderTest, RefusesForeignFileAndOtherVersion) {
  std::vector<std::byte> zeros(kDeltaHeaderBytes);
  auto parsed = ParseDeltaHeader(zeros);
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message().find("bad magic"), std::string::npos);

  DeltaHeader h = Sample();
  h.version = 2;
  parsed = ParseDeltaHeader(Encoded(h));
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code(), ENOTSUP);
}

TEST(DeltaHeaderTest, RefusesGeometryThatDoesNotFitCapacity) {
  DeltaHeader h = Sample();
  h.bitmap_bytes = 4096;
  auto parsed = ParseDeltaHeader(Encoded(h));
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message().find("geometry"), std::string::npos);

  h = Sample();
  h.capacity_bytes = 1000;
  parsed = ParseDeltaHeader(Encoded(h));
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message().find("capacity"), std::string::npos);
}

TEST(DeltaHeaderTest, RefusesShortInput) {
  std::vector<std::byte> short_input(100);
  EXPECT_EQ(ParseDeltaHeader(short_input).error().code(), EIO);
}

}  // namespace
}  // namespace engine
