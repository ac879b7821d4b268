// SPDX-License-Identifier: Apache-2.0
// An ext4 file system on a presented flat disk, through a loop device: made on a blank
// clone, or already in the parent; checked with e2fsck and read back with debugfs after
// the clone is unmounted and mounted again.
#include "tests/mount/host_mounts.h"

namespace mount_test {
namespace {

using integration::WriteText;

// `debugfs -R "cat PATH" IMAGE`: the file's contents as debugfs reads them off the image,
// without the kernel's ext4 driver.
std::string DebugfsCat(const std::string& image, const std::string& path) {
  CommandResult r = Run({"debugfs", "-R", "cat " + path, image});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

::testing::AssertionResult E2fsckClean(const std::string& image) {
  return RunsOk({"e2fsck", "-fn", image});
}

using Ext4OnLoopTest = MountTest;

TEST_F(Ext4OnLoopTest, FileSystemMadeOnABlankCloneSurvivesRemount) {
  const std::string clone = Clone(MakeParent("base.vmdk", "256M"), "c1");
  const std::string big = PatternBytes(3 << 20, 1);
  {
    MountedClone m(clone, Path("m1"));
    ASSERT_MOUNTED(m);
    LoopDevice loop(m / "base-flat.vmdk");
    ASSERT_TRUE(loop.ok()) << loop.error();
    // mkfs discards the whole device first: the loop driver punches holes in the flat file.
    ASSERT_TRUE(RunsOk({"mkfs.ext4", "-q", "-F", loop.device()}));
    KernelMount ext4("ext4", loop.device(), Path("ext4"));
    ASSERT_KERNEL_MOUNTED(ext4);
    WriteText(ext4 / "hello.txt", "written through ext4 on a clone\n");
    std::filesystem::create_directories(ext4 / "dir/sub");
    WriteText(ext4 / "dir/sub/big.bin", big);
    ASSERT_TRUE(RunsOk({"sync", "-f", ext4 / "hello.txt"}));
    EXPECT_TRUE(ext4.Unmount());
    EXPECT_TRUE(loop.Detach());
    EXPECT_TRUE(m.Unmount());
  }
  MountedClone again(clone, Path("m1"));
  ASSERT_MOUNTED(again);
  const std::string flat = again / "base-flat.vmdk";
  EXPECT_TRUE(E2fsckClean(flat));
  EXPECT_EQ(DebugfsCat(flat, "/hello.txt"), "written through ext4 on a clone\n");
  EXPECT_TRUE(DebugfsCat(flat, "/dir/sub/big.bin") == big) << "big.bin differs";
  // And the kernel reads it back the same through a new loop device.
  LoopDevice loop(flat);
  ASSERT_TRUE(loop.ok()) << loop.error();
  KernelMount ext4("ext4", loop.device(), Path("ext4"), "ro");
  ASSERT_KERNEL_MOUNTED(ext4);
  EXPECT_EQ(ReadText(ext4 / "hello.txt"), "written through ext4 on a clone\n");
  EXPECT_TRUE(ReadText(ext4 / "dir/sub/big.bin") == big) << "big.bin differs";
}

TEST_F(Ext4OnLoopTest, CloneSeesTheParentsFilesAndAddsItsOwnLeavingTheParentUnchanged) {
  // A golden disk holding an ext4 made from a directory, as an image builder would.
  const std::string tree = Path("golden-tree");
  std::filesystem::create_directories(tree + "/etc");
  WriteText(tree + "/etc/motd", "golden image\n");
  const std::string golden_data = PatternBytes(1 << 20, 2);
  WriteText(tree + "/data.bin", golden_data);
  const std::string raw = Path("golden.raw");
  ASSERT_TRUE(RunsOk({"mkfs.ext4", "-q", "-F", "-d", tree, raw, "64M"}));
  const std::string parent = Path("golden.vmdk");
  ASSERT_TRUE(RunsOk({"qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, parent}));
  const std::string parent_sha = testing_support::Sha256OfFile(parent);

  const std::string clone = Clone(parent, "c1");
  const std::string added = PatternBytes(2 << 20, 3);
  {
    MountedClone m(clone, Path("m1"));
    ASSERT_MOUNTED(m);
    LoopDevice loop(m / "golden-flat.vmdk");
    ASSERT_TRUE(loop.ok()) << loop.error();
    KernelMount ext4("ext4", loop.device(), Path("ext4"));
    ASSERT_KERNEL_MOUNTED(ext4);
    EXPECT_EQ(ReadText(ext4 / "etc/motd"), "golden image\n");
    EXPECT_TRUE(ReadText(ext4 / "data.bin") == golden_data) << "data.bin differs";
    WriteText(ext4 / "etc/motd", "clone c1\n");  // a parent file changed in the clone
    WriteText(ext4 / "added.bin", added);
    EXPECT_TRUE(ext4.Unmount());
    EXPECT_TRUE(loop.Detach());
    EXPECT_TRUE(m.Unmount());
  }
  EXPECT_EQ(testing_support::Sha256OfFile(parent), parent_sha);
  EXPECT_TRUE(RunsOk({"qemu-img", "compare", "-q", "-f", "vmdk", "-F", "raw", parent, raw}));
  EXPECT_EQ(DebugfsCat(raw, "/etc/motd"), "golden image\n");

  MountedClone again(clone, Path("m1"));
  ASSERT_MOUNTED(again);
  const std::string flat = again / "golden-flat.vmdk";
  EXPECT_TRUE(E2fsckClean(flat));
  EXPECT_EQ(DebugfsCat(flat, "/etc/motd"), "clone c1\n");
  EXPECT_TRUE(DebugfsCat(flat, "/data.bin") == golden_data) << "data.bin differs";
  EXPECT_TRUE(DebugfsCat(flat, "/added.bin") == added) << "added.bin differs";
}

}  // namespace
}  // namespace mount_test
