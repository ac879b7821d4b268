// SPDX-License-Identifier: Apache-2.0
// A linked clone mounted and read and written by qemu-img and qemu-io.
#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using BasicMountTest = MountTest;

TEST_F(BasicMountTest, PresentsTheParentsContentsAndKeepsWritesInTheClone) {
  const std::string parent =
      MakeParent("base.vmdk", "64M", {"write -P 0x11 0 1M", "write -P 0x22 63M 1M"});
  const std::string parent_sha = testing_support::Sha256OfFile(parent);
  const std::string clone = Clone(parent, "c1");
  {
    MountedClone m(clone, Path("m1"));
    ASSERT_MOUNTED(m);
    EXPECT_TRUE(std::filesystem::exists(m / "base.vmdk"));
    EXPECT_EQ(std::filesystem::file_size(m / "base-flat.vmdk"), 64u << 20);
    EXPECT_FALSE(std::filesystem::exists(m / ".clonefs"));
    EXPECT_TRUE(RunsOk({"qemu-img", "compare", "-q", m / "base.vmdk", parent}));
    // Unaligned, spanning blocks, and the last sector.
    EXPECT_TRUE(QemuIo(m / "base.vmdk", {"write -P 0x33 1000 10000", "write -P 0x44 67108352 512",
                                          "read -P 0x33 1000 10000", "read -P 0x11 0 1000",
                                          "read -P 0x11 11000 1037576",
                                          "read -P 0x44 67108352 512"}));
    EXPECT_FALSE(RunsOk({"qemu-img", "compare", "-q", m / "base.vmdk", parent}));
  }
  EXPECT_EQ(testing_support::Sha256OfFile(parent), parent_sha);
  // Remounted, the writes are still there.
  MountedClone again(clone, Path("m1"));
  ASSERT_MOUNTED(again);
  EXPECT_TRUE(QemuIo(again / "base.vmdk", {"read -P 0x33 1000 10000", "read -P 0x44 67108352 512",
                                            "read -P 0x22 63M 1048064"}));
}

TEST_F(BasicMountTest, SecondMountOfTheSameCloneIsRefusedNamingTheHolder) {
  const std::string clone = Clone(MakeParent("base.vmdk", "16M"), "c1");
  MountedClone first(clone, Path("m1"));
  ASSERT_MOUNTED(first);
  MountedClone second(clone, Path("m2"));
  EXPECT_FALSE(second.ok());
  EXPECT_TRUE(IsOneLineRefusal(second.result(), clone + ": VM is running"));
  EXPECT_NE(second.result().err.find("VM is running (mounted at " + Path("m1")),
            std::string::npos)
      << second.result().err;
  EXPECT_NE(second.result().err.find("pid " + std::to_string(first.pid())), std::string::npos);
  EXPECT_FALSE(IsMountpoint(Path("m2")));
}

}  // namespace
}  // namespace mount_test
