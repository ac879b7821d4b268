// SPDX-License-Identifier: Apache-2.0
// `clonectl clone SRC DEST --full` with the real binary: a VM directory (its .vmx
// rewritten as a linked clone's, its nvram copied, its disks copied and left as they
// were), a qemu-made chain merged into one independent file, and the refusals: one line
// naming the file, a non-zero exit, nothing created. Each subformat qemu-img writes is
// covered by QemuImageTest.FullCloneIsAMonolithicSparseCopyThatQemuChecksClean.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/integration_util.h"
#include "tests/support/test_support.h"

namespace integration {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

constexpr const char* kVmx =
    ".encoding = \"UTF-8\"\n"
    "displayName = \"Golden image\"\n"
    "scsi0.present = \"TRUE\"\n"
    "scsi0:0.fileName = \"golden.vmdk\"\n"
    "sata0:1.fileName = \"data/extra.vmdk\"\n"
    "ide1:0.deviceType = \"cdrom-image\"\n"
    "ide1:0.fileName = \"/isos/install.iso\"\n"
    "nvram = \"golden.nvram\"\n"
    "ethernet0.generatedAddress = \"00:0c:29:12:34:56\"\n"
    "uuid.bios = \"56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc\"\n"
    "memsize = \"2048\"\r\n";

class ClonectlFullCloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(golden_ + "/data");
    ASSERT_TRUE(
        RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", golden_ + "/golden.vmdk", "64M"}));
    ASSERT_TRUE(QemuIo(golden_ + "/golden.vmdk",
                       {"write -P 0x5a 0 1M", "write -P 0x11 40M 68k", "write -z 100k 64k"}));
    ASSERT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat",
                        golden_ + "/data/extra.vmdk", "8M"}));
    ASSERT_TRUE(QemuIo(golden_ + "/data/extra.vmdk", {"write -P 0x77 4M 8k"}));
    WriteText(golden_ + "/golden.vmx", kVmx);
    WriteText(golden_ + "/golden.nvram", std::string("NVRAM\0\x01\x02", 8));
    WriteText(golden_ + "/vmware.log", "not copied");
  }

  std::vector<std::string> Entries(const std::string& dir) const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir dir_;
  const std::string golden_ = dir_ / "golden";
};

TEST_F(ClonectlFullCloneTest, CopiesAVmDirectory) {
  const std::string golden_sha = testing_support::Sha256OfFile(golden_ + "/golden.vmdk");
  const std::string c1 = dir_ / "c1";
  CommandResult r = Clonectl({"clone", golden_, c1, "--full", "--name", "Copy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  // One line per disk, naming what was read and written, and one for the configuration.
  EXPECT_NE(r.out.find(c1 + ": full clone of " + golden_ + "/golden.vmdk (disk golden, " +
                       std::to_string(64 << 20) + " bytes): golden.vmdk, "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("(disk extra, 8388608 bytes): extra.vmdk, 65536 bytes of data"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(c1 + ": configuration c1.vmx"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;

  EXPECT_EQ(Entries(c1),
            (std::vector<std::string>{"c1.nvram", "c1.vmx", "extra.vmdk", "golden.vmdk"}));
  EXPECT_TRUE(IsFullCloneOf(c1 + "/golden.vmdk", golden_ + "/golden.vmdk"));
  EXPECT_TRUE(IsFullCloneOf(c1 + "/extra.vmdk", golden_ + "/data/extra.vmdk"));
  EXPECT_EQ(ReadText(c1 + "/c1.nvram"), std::string("NVRAM\0\x01\x02", 8));
  EXPECT_EQ(ReadText(c1 + "/c1.vmx"),
            ".encoding = \"UTF-8\"\n"
            "displayName = \"Copy\"\n"
            "scsi0.present = \"TRUE\"\n"
            "scsi0:0.fileName = \"golden.vmdk\"\n"
            "sata0:1.fileName = \"extra.vmdk\"\n"
            "ide1:0.deviceType = \"cdrom-image\"\n"
            "ide1:0.fileName = \"/isos/install.iso\"\n"
            "nvram = \"c1.nvram\"\n"
            "memsize = \"2048\"\r\n");
  // The clone stands alone: qemu reads it with the source gone.
  fs::rename(golden_, dir_ / "gone");
  EXPECT_TRUE(RunsOk({"qemu-img", "check", c1 + "/golden.vmdk"}));
  fs::rename(dir_ / "gone", golden_);
  // The source is only read: unchanged, and still writable (a linked clone's parent is not).
  EXPECT_EQ(testing_support::Sha256OfFile(golden_ + "/golden.vmdk"), golden_sha);
  EXPECT_EQ(ReadText(golden_ + "/golden.vmx"), kVmx);
  EXPECT_NE(fs::status(golden_ + "/golden.vmdk").permissions() & fs::perms::owner_write,
            fs::perms::none);
  EXPECT_EQ(Entries(dir_.path()), (std::vector<std::string>{"c1", "golden"}));
}

TEST_F(ClonectlFullCloneTest, MergesAChainIntoOneIndependentFile) {
  const std::string base = dir_ / "base.vmdk";
  const std::string mid = dir_ / "mid.vmdk";
  const std::string top = dir_ / "top.vmdk";
  ASSERT_TRUE(RunsOk(
      {"qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", base, "40M"}));
  ASSERT_TRUE(QemuIo(base, {"write -P 0x01 0 8M", "write -P 0x02 33M 1M"}));
  ASSERT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", "-b",
                      "base.vmdk", "-F", "vmdk", mid}));
  ASSERT_TRUE(QemuIo(mid, {"write -P 0x03 1M 100k", "write -z 2M 1M", "write -P 0x04 20M 4k"}));
  ASSERT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", "-o",
                      "subformat=twoGbMaxExtentSparse", "-b", "mid.vmdk", "-F", "vmdk", top}));
  ASSERT_TRUE(QemuIo(top, {"write -P 0x05 3M 5000", "write -z 33M 64k"}));

  const std::string c1 = dir_ / "c1";
  CommandResult r = Clonectl({"clone", top, c1, "--full"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Entries(c1), std::vector<std::string>{"top.vmdk"});
  EXPECT_TRUE(IsFullCloneOf(c1 + "/top.vmdk", top));
}

TEST_F(ClonectlFullCloneTest, RefusesAnExistingDestination) {
  fs::create_directories(dir_ / "c1");
  CommandResult r = Clonectl({"clone", golden_, dir_ / "c1", "--full"});
  EXPECT_TRUE(IsOneLineError(r, dir_ / "c1"));
  EXPECT_TRUE(IsOneLineError(r, "already exists"));
  EXPECT_TRUE(Entries(dir_ / "c1").empty());
  EXPECT_EQ(Entries(dir_.path()), (std::vector<std::string>{"c1", "golden"}));
}

TEST_F(ClonectlFullCloneTest, RefusesABrokenDiskBeforeCreatingAnything) {
  fs::remove(golden_ + "/data/extra-flat.vmdk");
  CommandResult r = Clonectl({"clone", golden_, dir_ / "c1", "--full"});
  EXPECT_TRUE(IsOneLineError(r, "golden.vmx: sata0:1.fileName"));
  EXPECT_TRUE(IsOneLineError(r, "extra-flat.vmdk"));
  EXPECT_EQ(Entries(dir_.path()), std::vector<std::string>{"golden"});
}

TEST_F(ClonectlFullCloneTest, LinkedAndFullTogetherAreRefused) {
  CommandResult r = Clonectl({"clone", golden_, dir_ / "c1", "--linked", "--full"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(IsOneLineError(r, "--full"));
  EXPECT_EQ(Entries(dir_.path()), std::vector<std::string>{"golden"});
}

}  // namespace
}  // namespace integration
