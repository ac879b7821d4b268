// SPDX-License-Identifier: Apache-2.0
// A clone made from a VM directory (a .vmx naming a disk), mounted: its .vmx and other
// files pass through, read-write, to the clone directory; the metadata directory is
// neither listed nor reachable; the presented descriptor is a real file QEMU may rewrite;
// the presented flat disk keeps its size and its name.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using integration::ReadText;
using integration::WriteText;

constexpr const char* kGoldenVmx =
    ".encoding = \"UTF-8\"\n"
    "config.version = \"8\"\n"
    "virtualHW.version = \"19\"\n"
    "displayName = \"Golden image\"\n"
    "scsi0.present = \"TRUE\"\n"
    "scsi0.virtualDev = \"lsilogic\"\n"
    "scsi0:0.present = \"TRUE\"\n"
    "scsi0:0.fileName = \"golden.vmdk\"\n"
    "nvram = \"golden.nvram\"\n"
    "memsize = \"1024\"\n";

std::vector<std::string> SortedEntries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// 0 when a call returning 0 or -1 succeeded, else its errno.
int ErrnoOf(int rc) { return rc == 0 ? 0 : errno; }

// The CID line of a descriptor as QEMU writes it ("CID=%x").
std::string CidLine(const std::string& descriptor_text) {
  const size_t at = descriptor_text.find("\nCID=");
  if (at == std::string::npos) return "";
  return descriptor_text.substr(at + 1, descriptor_text.find('\n', at + 1) - at - 1);
}

class VmDirectoryTest : public MountTest {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(golden_);
    ASSERT_TRUE(
        RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", golden_ + "/golden.vmdk", "16M"}));
    ASSERT_TRUE(QemuIo(golden_ + "/golden.vmdk", {"write -P 0x5a 0 64k"}));
    WriteText(golden_ + "/golden.vmx", kGoldenVmx);
    WriteText(golden_ + "/golden.nvram", "NVRAM");
    CommandResult r = Clonectl({"clone", golden_, clone_, "--linked"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  const std::string golden_ = Path("golden");
  const std::string clone_ = Path("c1");
};

TEST_F(VmDirectoryTest, MountShowsTheClonesVmxAndPresentedDisksButNotTheMetadataDirectory) {
  MountedClone m(clone_, Path("m"));
  ASSERT_MOUNTED(m);
  EXPECT_EQ(SortedEntries(m.path()),
            (std::vector<std::string>{"c1.nvram", "c1.vmx", "golden-flat.vmdk", "golden.vmdk"}));
  CommandResult ls = testing_support::Run({"ls", "-A", m.path()});
  EXPECT_EQ(ls.out, "c1.nvram\nc1.vmx\ngolden-flat.vmdk\ngolden.vmdk\n") << ls.err;

  const std::string vmx = ReadText(m / "c1.vmx");
  EXPECT_EQ(vmx, ReadText(clone_ + "/c1.vmx"));
  EXPECT_NE(vmx.find("scsi0:0.fileName = \"golden.vmdk\"\n"), std::string::npos) << vmx;
  EXPECT_EQ(ReadText(m / "c1.nvram"), "NVRAM");
  // What the .vmx names is beside it, and is the parent's disk.
  EXPECT_TRUE(QemuImgCompare(m / "golden.vmdk", golden_ + "/golden.vmdk"));
}

TEST_F(VmDirectoryTest, MountingTheVmxMountsItsDirectory) {
  MountedClone m(clone_ + "/c1.vmx", Path("m"));
  ASSERT_MOUNTED(m);
  EXPECT_EQ(SortedEntries(m.path()),
            (std::vector<std::string>{"c1.nvram", "c1.vmx", "golden-flat.vmdk", "golden.vmdk"}));
}

TEST_F(VmDirectoryTest, FilesWrittenRenamedAndDeletedInTheMountAreSoInTheCloneDirectory) {
  MountedClone m(clone_, Path("m"));
  ASSERT_MOUNTED(m);
  WriteText(m / "vmware.log", "powered on\n");
  EXPECT_EQ(ReadText(clone_ + "/vmware.log"), "powered on\n");

  ASSERT_EQ(std::rename((m / "vmware.log").c_str(), (m / "vmware-0.log").c_str()), 0)
      << std::strerror(errno);
  EXPECT_FALSE(std::filesystem::exists(clone_ + "/vmware.log"));
  EXPECT_EQ(ReadText(clone_ + "/vmware-0.log"), "powered on\n");

  ASSERT_EQ(unlink((m / "vmware-0.log").c_str()), 0) << std::strerror(errno);
  EXPECT_FALSE(std::filesystem::exists(clone_ + "/vmware-0.log"));

  // The hypervisor rewrites the .vmx, and keeps files in subdirectories.
  const std::string vmx = ReadText(m / "c1.vmx") + "tools.syncTime = \"TRUE\"\n";
  WriteText(m / "c1.vmx", vmx);
  EXPECT_EQ(ReadText(clone_ + "/c1.vmx"), vmx);
  ASSERT_TRUE(std::filesystem::create_directory(m / "c1.vmx.lck"));
  WriteText(m / "c1.vmx.lck/M1.lck", "lock");
  EXPECT_EQ(ReadText(clone_ + "/c1.vmx.lck/M1.lck"), "lock");
  std::filesystem::remove_all(m / "c1.vmx.lck");
  EXPECT_FALSE(std::filesystem::exists(clone_ + "/c1.vmx.lck"));

  EXPECT_EQ(SortedEntries(clone_), (std::vector<std::string>{".clonefs", "c1.nvram", "c1.vmx"}));
}

TEST_F(VmDirectoryTest, MetadataDirectoryCanNeitherBeReachedNorCreatedThroughTheMount) {
  const std::string config = ReadText(clone_ + "/.clonefs/clone.json");
  MountedClone m(clone_, Path("m"));
  ASSERT_MOUNTED(m);
  struct stat st {};
  EXPECT_EQ(ErrnoOf(stat((m / ".clonefs").c_str(), &st)), ENOENT);
  EXPECT_EQ(OpenErrno(m / ".clonefs/clone.json", O_RDONLY), ENOENT);
  EXPECT_EQ(OpenErrno(m / ".clonefs/lock", O_RDWR), ENOENT);
  EXPECT_EQ(OpenErrno(m / ".clonefs/new", O_WRONLY | O_CREAT), ENOENT);

  EXPECT_NE(OpenErrno(m / ".clonefs", O_WRONLY | O_CREAT), 0);
  EXPECT_NE(ErrnoOf(mkdir((m / ".clonefs").c_str(), 0755)), 0);
  EXPECT_NE(ErrnoOf(std::rename((m / "c1.nvram").c_str(), (m / ".clonefs").c_str())), 0);
  EXPECT_NE(ErrnoOf(symlink("c1.vmx", (m / ".clonefs").c_str())), 0);

  EXPECT_TRUE(std::filesystem::is_directory(clone_ + "/.clonefs"));
  EXPECT_EQ(ReadText(clone_ + "/.clonefs/clone.json"), config);
  EXPECT_EQ(ReadText(clone_ + "/c1.nvram"), "NVRAM");
  EXPECT_EQ(SortedEntries(m.path()),
            (std::vector<std::string>{"c1.nvram", "c1.vmx", "golden-flat.vmdk", "golden.vmdk"}));
}

TEST_F(VmDirectoryTest, QemuRewritesThePresentedDescriptorsCidAndTheNewCidPersists) {
  std::string cid_after_write;
  {
    MountedClone m(clone_, Path("m"));
    ASSERT_MOUNTED(m);
    const std::string before = CidLine(ReadText(m / "golden.vmdk"));
    ASSERT_FALSE(before.empty()) << ReadText(m / "golden.vmdk");
    // QEMU gives an image a new CID on its first write, in the descriptor file itself.
    ASSERT_TRUE(QemuIo(m / "golden.vmdk", {"write -P 0x66 1M 4k"}));
    cid_after_write = CidLine(ReadText(m / "golden.vmdk"));
    EXPECT_NE(cid_after_write, before);
    EXPECT_TRUE(m.Unmount());
  }
  EXPECT_EQ(CidLine(ReadText(clone_ + "/.clonefs/golden.vmdk")), cid_after_write);

  MountedClone again(clone_, Path("m"));
  ASSERT_MOUNTED(again);
  EXPECT_EQ(CidLine(ReadText(again / "golden.vmdk")), cid_after_write);
  // Still a descriptor QEMU opens, over the data written through it.
  EXPECT_TRUE(QemuIoUncached(again / "golden.vmdk", {"read -P 0x5a 0 64k", "read -P 0x66 1M 4k"}));
}

TEST_F(VmDirectoryTest, FlatDiskCanBeNeitherTruncatedNorUnlinkedNorRenamed) {
  MountedClone m(clone_, Path("m"));
  ASSERT_MOUNTED(m);
  const std::string flat = m / "golden-flat.vmdk";
  CommandResult r = testing_support::Run({"truncate", "-s", "1M", flat});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
  EXPECT_EQ(ErrnoOf(truncate(flat.c_str(), 32 << 20)), EPERM);
  EXPECT_EQ(OpenErrno(flat, O_WRONLY | O_TRUNC), EPERM);
  EXPECT_EQ(ErrnoOf(truncate(flat.c_str(), 16 << 20)), 0) << "the capacity is no change";

  EXPECT_EQ(ErrnoOf(unlink(flat.c_str())), EPERM);
  EXPECT_EQ(ErrnoOf(std::rename(flat.c_str(), (m / "other-flat.vmdk").c_str())), EPERM);
  EXPECT_EQ(ErrnoOf(std::rename((m / "c1.nvram").c_str(), flat.c_str())), EPERM);
  EXPECT_EQ(ErrnoOf(unlink((m / "golden.vmdk").c_str())), EPERM);
  EXPECT_EQ(ErrnoOf(std::rename((m / "golden.vmdk").c_str(), (m / "other.vmdk").c_str())), EPERM);

  EXPECT_EQ(std::filesystem::file_size(flat), 16u << 20);
  EXPECT_TRUE(QemuImgCompare(m / "golden.vmdk", golden_ + "/golden.vmdk"));
  EXPECT_EQ(ReadText(m / "c1.nvram"), "NVRAM");
}

}  // namespace
}  // namespace mount_test
