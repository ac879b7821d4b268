// SPDX-License-Identifier: Apache-2.0
// Broken parent chains: loops, a parent modified since the child was created (CID
// mismatch), capacity mismatches, missing parents, chains deeper than any real one.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "common/memory_storage.h"
#include "tests/vmdk/disk_test_util.h"
#include "tests/vmdk/sparse_image_builder.h"
#include "vmdk/disk.h"

namespace vmdk_test {
namespace {

constexpr uint64_t kGrain = 64 * 1024;

class ChainCorruptionTest : public ::testing::Test {
 protected:
  // Stores a monolithicSparse link at `path` with these descriptor fields.
  void PutLink(const std::string& path, DescriptorFields fields, uint64_t capacity_sectors = 4096) {
    SparseImageBuilder b(capacity_sectors);
    b.Fields(std::move(fields)).SetGrain(0, PatternBytes(kGrain, 1));
    storage_.SetFile(path, b.BuildMonolithic(path).bytes);
  }
  static DescriptorFields Link(uint32_t cid, uint32_t parent_cid, std::optional<std::string> hint) {
    return {.cid = cid, .parent_cid = parent_cid, .parent_hint = std::move(hint)};
  }

  common::MemoryStorage storage_;
};

TEST_F(ChainCorruptionTest, ValidChildAndParentOpen) {
  PutLink("vm/base.vmdk", Link(0xaaaaaaaa, 0xffffffff, std::nullopt));
  PutLink("vm/child.vmdk", Link(0xbbbbbbbb, 0xaaaaaaaa, "base.vmdk"));
  EXPECT_TRUE(OpenMapAndRead(storage_, "vm/child.vmdk").ok());
}

TEST_F(ChainCorruptionTest, TwoLinksNamingEachOtherAsParentLoop) {
  PutLink("a.vmdk", Link(0xaaaaaaaa, 0xbbbbbbbb, "b.vmdk"));
  PutLink("b.vmdk", Link(0xbbbbbbbb, 0xaaaaaaaa, "a.vmdk"));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "a.vmdk"), ELOOP, {"b.vmdk", "loops", "a.vmdk"}));
}

TEST_F(ChainCorruptionTest, LinkNamingItselfAsParentLoops) {
  PutLink("a.vmdk", Link(0xaaaaaaaa, 0xaaaaaaaa, "a.vmdk"));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "a.vmdk"), ELOOP, {"a.vmdk", "loops"}));
}

TEST_F(ChainCorruptionTest, LoopFurtherDownTheChainIsFound) {
  PutLink("a.vmdk", Link(1, 2, "b.vmdk"));
  PutLink("b.vmdk", Link(2, 3, "c.vmdk"));
  PutLink("c.vmdk", Link(3, 2, "b.vmdk"));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "a.vmdk"), ELOOP, {"c.vmdk", "loops", "b.vmdk"}));
}

TEST_F(ChainCorruptionTest, ParentWithDifferentCidWasModified) {
  PutLink("vm/base.vmdk", Link(0xaaaaaaaa, 0xffffffff, std::nullopt));
  PutLink("vm/child.vmdk", Link(0xbbbbbbbb, 0x12121212, "base.vmdk"));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "vm/child.vmdk"), ESTALE,
                        {"vm/base.vmdk", "aaaaaaaa", "12121212", "modified"}));
}

TEST_F(ChainCorruptionTest, ParentWithoutCidCannotMatch) {
  storage_.SetFile("flat.vmdk", Bytes(4096 * 512));
  storage_.SetFile("base.vmdk", "createType=\"monolithicFlat\"\nRW 4096 FLAT \"flat.vmdk\" 0\n");
  PutLink("child.vmdk", Link(0xbbbbbbbb, 0xaaaaaaaa, "base.vmdk"));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "child.vmdk"), ESTALE,
                        {"base.vmdk", "(none)", "modified"}));
}

TEST_F(ChainCorruptionTest, ParentCapacityDifferentFromChildIsRefused) {
  PutLink("base.vmdk", Link(0xaaaaaaaa, 0xffffffff, std::nullopt), 8192);
  PutLink("child.vmdk", Link(0xbbbbbbbb, 0xaaaaaaaa, "base.vmdk"), 4096);
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "child.vmdk"), EINVAL,
                        {"base.vmdk", "capacity", "child.vmdk"}));
}

TEST_F(ChainCorruptionTest, MissingParentIsNamed) {
  PutLink("vm/child.vmdk", Link(0xbbbbbbbb, 0xaaaaaaaa, "base.vmdk"));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "vm/child.vmdk"), ENOENT, {"vm/base.vmdk"}));
}

TEST_F(ChainCorruptionTest, MissingAbsoluteParentIsNamedByItsFallbackPath) {
  PutLink("vm/child.vmdk", Link(0xbbbbbbbb, 0xaaaaaaaa, "/vmfs/volumes/ds1/vm/base.vmdk"));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "vm/child.vmdk"), ENOENT, {"base.vmdk"}));
}

TEST_F(ChainCorruptionTest, DeltaWithParentCidButNoHintIsRefused) {
  PutLink("child.vmdk", Link(0xbbbbbbbb, 0xaaaaaaaa, std::nullopt));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "child.vmdk"), EINVAL,
                        {"child.vmdk", "parentFileNameHint"}));
}

TEST_F(ChainCorruptionTest, CorruptParentIsNamedInTheError) {
  PutLink("base.vmdk", Link(0xaaaaaaaa, 0xffffffff, std::nullopt));
  Bytes parent = *storage_.GetFile("base.vmdk");
  parent.resize(300);
  storage_.SetFile("base.vmdk", parent);
  PutLink("child.vmdk", Link(0xbbbbbbbb, 0xaaaaaaaa, "base.vmdk"));
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "child.vmdk"), EIO, {"base.vmdk", "header"}));
}

TEST_F(ChainCorruptionTest, ChainDeeperThanTheLimitIsRefused) {
  // Text descriptors over ZERO extents make a deep chain cheap.
  const size_t links = vmdk::kMaxChainDepth + 1;
  for (size_t i = 0; i < links; ++i) {
    DescriptorFields f =
        Link(uint32_t(i), i + 1 < links ? uint32_t(i + 1) : 0xffffffff, std::nullopt);
    if (i + 1 < links) f.parent_hint = fmt::format("l{}.vmdk", i + 1);
    storage_.SetFile(fmt::format("l{}.vmdk", i), DescriptorText("custom", f, {"RW 64 ZERO"}));
  }
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "l0.vmdk"), ELOOP, {"l0.vmdk", "deeper"}));
  EXPECT_TRUE(OpenMapAndRead(storage_, "l1.vmdk").ok());  // exactly the limit
}

}  // namespace
}  // namespace vmdk_test
