// SPDX-License-Identifier: Apache-2.0
// Writes through a mounted clone: qemu-io's patterned writes (unaligned, across 4 KiB
// blocks and 64 KiB grains, the last sector and byte) read back, match the same writes
// applied to a raw copy of the parent, and never reach the parent; two clones of one
// parent mounted side by side do not see each other's writes.
#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using testing_support::Sha256OfFile;

using CloneWritesTest = MountTest;

TEST_F(CloneWritesTest, PatternedWritesReadBackAndMatchTheSameWritesOnARawCopyOfTheParent) {
  const std::string parent =
      MakeParent("base.vmdk", "32M", {"write -P 0x11 0 8M", "write -P 0x22 24M 8M"});
  const std::string parent_sha = Sha256OfFile(parent);
  const std::string reference = Path("reference.raw");
  ASSERT_TRUE(RunsOk({"qemu-img", "convert", "-f", "vmdk", "-O", "raw", parent, reference}));
  const std::vector<std::string> writes = {
      "write -P 0xa1 1000 10",        // inside one block, over parent data
      "write -P 0xa2 4090 12",        // across a block boundary by a few bytes
      "write -P 0xa3 12345 70000",    // unaligned, many blocks and a grain boundary
      "write -P 0xa4 10485860 5000",  // unaligned, where the parent has no data
      "write -P 0xa5 33553920 512",   // the last sector
      "write -P 0xa6 33554431 1",     // the last byte, over the last sector's write
  };
  std::vector<std::string> raw_argv = {"qemu-io", "-f", "raw"};
  for (const auto& w : writes) raw_argv.insert(raw_argv.end(), {"-c", w});
  raw_argv.push_back(reference);
  ASSERT_TRUE(RunsOk(raw_argv));

  const std::string clone = Clone(parent, "c1");
  MountedClone m(clone, Path("m"));
  ASSERT_MOUNTED(m);
  ASSERT_TRUE(QemuIo(m / "base.vmdk", writes));
  // Read back with O_DIRECT: from the daemon, not from pages the writes left cached.
  EXPECT_TRUE(QemuIoUncached(
      m / "base.vmdk",
      {"read -P 0x11 0 1000", "read -P 0xa1 1000 10", "read -P 0x11 1010 3080",
       "read -P 0xa2 4090 12", "read -P 0x11 4102 8243", "read -P 0xa3 12345 70000",
       "read -P 0x11 82345 8306263", "read -P 0 8M 2097252", "read -P 0xa4 10485860 5000",
       "read -P 0 10490860 14674964", "read -P 0x22 24M 8388096", "read -P 0xa5 33553920 511",
       "read -P 0xa6 33554431 1"}));
  EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", reference, {"-f", "vmdk", "-F", "raw"}));
  EXPECT_TRUE(m.Unmount());
  EXPECT_EQ(Sha256OfFile(parent), parent_sha);
}

TEST_F(CloneWritesTest, TwoClonesOfOneParentMountedAtOnceDoNotSeeEachOthersWrites) {
  const std::string parent = MakeParent("base.vmdk", "16M", {"write -P 0x11 0 1M"});
  const std::string parent_sha = Sha256OfFile(parent);
  const std::string c1 = Clone(parent, "c1");
  const std::string c2 = Clone(parent, "c2");
  MountedClone m1(c1, Path("m1"));
  ASSERT_MOUNTED(m1);
  MountedClone m2(c2, Path("m2"));
  ASSERT_MOUNTED(m2);

  // The same place in both, and places only one of them writes.
  ASSERT_TRUE(QemuIo(m1 / "base.vmdk", {"write -P 0xaa 0 4k", "write -P 0xab 8M 64k"}));
  ASSERT_TRUE(QemuIo(m2 / "base.vmdk", {"write -P 0xbb 0 4k", "write -P 0xbc 512k 100"}));

  EXPECT_TRUE(QemuIoUncached(
      m1 / "base.vmdk", {"read -P 0xaa 0 4k", "read -P 0x11 4k 1020k", "read -P 0xab 8M 64k"}));
  EXPECT_TRUE(QemuIoUncached(m2 / "base.vmdk",
                             {"read -P 0xbb 0 4k", "read -P 0x11 4k 508k", "read -P 0xbc 512k 100",
                              "read -P 0x11 524388 524188", "read -P 0 8M 64k"}));
  EXPECT_FALSE(QemuImgCompare(m1 / "base.vmdk", m2 / "base.vmdk"));
  // A third reader of the parent sees neither clone's writes.
  EXPECT_TRUE(RunsOk({"qemu-io", "-r", "-f", "vmdk", "-c", "read -P 0x11 0 1M", "-c",
                      "read -P 0 8M 64k", parent}));
  EXPECT_EQ(Sha256OfFile(parent), parent_sha);
}

}  // namespace
}  // namespace mount_test
