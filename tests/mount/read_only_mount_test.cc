// SPDX-License-Identifier: Apache-2.0
// Read-only mounts: a clone mounted with -o ro, and a plain VMDK that clonefs does not
// manage. Reads serve the disk as qemu-img reads it; every write is refused with EROFS,
// and nothing on disk changes.
#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using testing_support::Sha256OfFile;

using ReadOnlyMountTest = MountTest;

TEST_F(ReadOnlyMountTest, RoOptionRefusesWritesWithErofsAndServesReads) {
  const std::string parent =
      MakeParent("base.vmdk", "16M", {"write -P 0x11 0 1M", "write -P 0x22 8M 64k"});
  const std::string clone = Clone(parent, "c1");
  const std::string map_sha = Sha256OfFile(clone + "/.clonefs/base.map");
  const std::string delta_sha = Sha256OfFile(clone + "/.clonefs/base.delta");
  const std::string descriptor_sha = Sha256OfFile(clone + "/.clonefs/base.vmdk");
  {
    MountedClone m(clone, Path("m"), {"-o", "ro"});
    ASSERT_MOUNTED(m);
    EXPECT_EQ(OpenErrno(m / "base-flat.vmdk", O_RDWR), EROFS);
    EXPECT_EQ(OpenErrno(m / "base-flat.vmdk", O_WRONLY), EROFS);
    EXPECT_EQ(OpenErrno(m / "base.vmdk", O_RDWR), EROFS);
    EXPECT_EQ(OpenErrno(m / "new-file", O_WRONLY | O_CREAT), EROFS);
    EXPECT_FALSE(QemuIo(m / "base.vmdk", {"write -P 0x33 0 4k"}));

    EXPECT_EQ(OpenErrno(m / "base-flat.vmdk", O_RDONLY), 0);
    EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", parent, {"-f", "vmdk", "-F", "vmdk"}));
    EXPECT_TRUE(m.Unmount());
  }
  EXPECT_EQ(Sha256OfFile(clone + "/.clonefs/base.map"), map_sha);
  EXPECT_EQ(Sha256OfFile(clone + "/.clonefs/base.delta"), delta_sha);
  EXPECT_EQ(Sha256OfFile(clone + "/.clonefs/base.vmdk"), descriptor_sha);
  EXPECT_FALSE(std::filesystem::exists(clone + "/new-file"));
}

TEST_F(ReadOnlyMountTest, PlainVmdkIsMountedReadOnlyAndComparesEqualToIt) {
  const std::string plain =
      MakeParent("plain.vmdk", "16M", {"write -P 0x11 0 1M", "write -P 0x22 16776704 512"});
  const std::string plain_sha = Sha256OfFile(plain);
  {
    MountedClone m(plain, Path("m"));
    ASSERT_MOUNTED(m);
    EXPECT_GT(m.pid(), 0) << "the daemon of a plain VMDK's mount was not found";
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(m.path())) {
      names.push_back(entry.path().filename());
    }
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"plain-flat.vmdk", "plain.vmdk"}));

    EXPECT_EQ(OpenErrno(m / "plain-flat.vmdk", O_RDWR), EROFS);
    EXPECT_EQ(OpenErrno(m / "plain.vmdk", O_WRONLY), EROFS);
    EXPECT_EQ(OpenErrno(m / "new-file", O_WRONLY | O_CREAT), EROFS);
    EXPECT_FALSE(QemuIo(m / "plain.vmdk", {"write -P 0x33 0 4k"}));
    EXPECT_TRUE(QemuImgCompare(m / "plain.vmdk", plain, {"-f", "vmdk", "-F", "vmdk"}));
    EXPECT_TRUE(m.Unmount());
  }
  EXPECT_EQ(Sha256OfFile(plain), plain_sha);
  // Nothing was written beside the plain VMDK either.
  std::vector<std::string> beside;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    beside.push_back(entry.path().filename());
  }
  std::sort(beside.begin(), beside.end());
  EXPECT_EQ(beside, (std::vector<std::string>{"m", "plain.vmdk"}));
}

}  // namespace
}  // namespace mount_test
