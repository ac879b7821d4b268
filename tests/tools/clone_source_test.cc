// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/clone_source.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "common/memory_storage.h"

namespace tools {
namespace {

using common::MemoryStorage;

std::vector<std::string> Names(const std::vector<CloneSourceDisk>& disks) {
  std::vector<std::string> names;
  for (const CloneSourceDisk& disk : disks) names.push_back(disk.name);
  return names;
}

common::Result<std::vector<CloneSourceDisk>> Disks(std::string_view text) {
  auto vmx = VmxFile::Parse(text, "golden.vmx");
  if (!vmx) return vmx.error();
  return ListVmxDisks(vmx.value(), "/vm", "golden.vmx");
}

TEST(ListVmxDisksTest, FindsPresentVmdksOnEveryBusInFileOrder) {
  auto disks = Disks(
      "nvme0:0.fileName = \"n.vmdk\"\n"
      "scsi0:0.fileName = \"s.vmdk\"\n"
      "scsi0:0.present = \"TRUE\"\n"
      "sata1:15.FILENAME = \"/abs/dir/../S.VMDK\"\n"
      "ide0:1.fileName = \"sub/i.vmdk\"\n");
  ASSERT_TRUE(disks) << disks.error().message();
  ASSERT_EQ(disks.value().size(), 4u);
  EXPECT_EQ(Names(disks.value()), (std::vector<std::string>{"n", "s", "S", "i"}));
  const CloneSourceDisk& sata = disks.value()[2];
  EXPECT_EQ(sata.device, "sata1:15");
  EXPECT_EQ(sata.file_key, "sata1:15.FILENAME");
  EXPECT_EQ(sata.vmdk_path, "/abs/S.VMDK");
  EXPECT_EQ(disks.value()[3].vmdk_path, "/vm/sub/i.vmdk");
}

TEST(ListVmxDisksTest, SkipsAbsentDevicesCdImagesAndOtherKeys) {
  auto disks = Disks(
      "scsi0:0.fileName = \"boot.vmdk\"\n"
      "scsi0:1.fileName = \"off.vmdk\"\n"
      "scsi0:1.present = \"false\"\n"
      "scsi1.present = \"FALSE\"\n"
      "scsi1:0.fileName = \"no-controller.vmdk\"\n"
      "ide1:0.fileName = \"install.iso\"\n"
      "ide1:0.deviceType = \"cdrom-image\"\n"
      "floppy0.fileName = \"f.vmdk\"\n"
      "serial0.fileName = \"s.vmdk\"\n"
      "scsi0.fileName = \"controller.vmdk\"\n"
      "scsi0:x.fileName = \"bad.vmdk\"\n"
      "sata0:2.fileName = \"\"\n");
  ASSERT_TRUE(disks) << disks.error().message();
  EXPECT_EQ(Names(disks.value()), (std::vector<std::string>{"boot"}));
}

TEST(ListVmxDisksTest, TheLastFileNameOfADeviceWins) {
  auto disks = Disks("scsi0:0.fileName = \"old.vmdk\"\nSCSI0:0.fileName = \"new.vmdk\"\n");
  ASSERT_TRUE(disks) << disks.error().message();
  EXPECT_EQ(Names(disks.value()), (std::vector<std::string>{"new"}));
}

TEST(ListVmxDisksTest, RefusesAVmxWithoutDisks) {
  auto disks = Disks("displayName = \"empty\"\nide1:0.fileName = \"x.iso\"\n");
  ASSERT_FALSE(disks);
  EXPECT_EQ(disks.error().code(), EINVAL);
  EXPECT_EQ(disks.error().message(),
            "golden.vmx: no disks (no present scsi, sata, ide or nvme device whose fileName is "
            "a .vmdk)");
}

TEST(ListVmxDisksTest, RefusesTwoDisksWithOneName) {
  auto disks = Disks("scsi0:0.fileName = \"a/disk.vmdk\"\nscsi0:1.fileName = \"b/disk.vmdk\"\n");
  ASSERT_FALSE(disks);
  EXPECT_EQ(disks.error().code(), EINVAL);
  EXPECT_EQ(disks.error().message(),
            "golden.vmx: scsi0:0.fileName and scsi0:1.fileName are both disks named 'disk' "
            "(/vm/a/disk.vmdk and /vm/b/disk.vmdk); a clone presents each disk as NAME.vmdk "
            "beside its .vmx, so disk names must differ");
}

TEST(ListVmxDisksTest, RefusesADiskNamedLikeAnothersFlatExtent) {
  auto disks = Disks("scsi0:0.fileName = \"a-flat.vmdk\"\nscsi0:1.fileName = \"a.vmdk\"\n");
  ASSERT_FALSE(disks);
  EXPECT_NE(disks.error().message().find("flat extent"), std::string::npos)
      << disks.error().message();
}

class ResolveCloneSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(storage_.CreateDirectory("/vm").ok());
    ASSERT_TRUE(storage_.CreateDirectory("/vm/golden").ok());
    storage_.SetFile("/vm/golden/golden.vmx",
                     "scsi0:0.fileName = \"golden.vmdk\"\nnvram = \"golden.nvram\"\n");
    storage_.SetFile("/vm/golden/golden.nvram", "nvram bytes");
    // What a VM directory holds besides its .vmx; none of it is a second .vmx.
    storage_.SetFile("/vm/golden/golden.vmxf", "<Foundry/>");
    storage_.SetFile("/vm/golden/golden.vmx~", "backup");
    ASSERT_TRUE(storage_.CreateDirectory("/vm/golden/golden.vmx.lck").ok());
  }

  MemoryStorage storage_;
};

TEST_F(ResolveCloneSourceTest, AVmDirectoryIsItsOnlyVmx) {
  auto source = ResolveCloneSource(storage_, "/vm/golden/");
  ASSERT_TRUE(source) << source.error().message();
  ASSERT_TRUE(source.value().vm);
  const CloneSourceVm& vm = *source.value().vm;
  EXPECT_EQ(vm.vmx_path, "/vm/golden/golden.vmx");
  EXPECT_EQ(vm.vmx_display, "/vm/golden/golden.vmx");
  EXPECT_EQ(vm.nvram_path, "/vm/golden/golden.nvram");
  EXPECT_EQ(vm.vmx_mode, 0644u);
  ASSERT_EQ(source.value().disks.size(), 1u);
  EXPECT_EQ(source.value().disks[0].vmdk_path, "/vm/golden/golden.vmdk");
  EXPECT_EQ(source.value().disks[0].name, "golden");
}

TEST_F(ResolveCloneSourceTest, AVmxPathIsThatVmx) {
  storage_.SetFile("/vm/golden/other.vmx", "sata0:0.fileName = \"../shared/base.vmdk\"\n");
  auto source = ResolveCloneSource(storage_, "/vm/golden/other.vmx");
  ASSERT_TRUE(source) << source.error().message();
  ASSERT_TRUE(source.value().vm);
  EXPECT_EQ(source.value().vm->vmx_display, "/vm/golden/other.vmx");
  EXPECT_EQ(source.value().vm->nvram_path, std::nullopt);
  ASSERT_EQ(source.value().disks.size(), 1u);
  EXPECT_EQ(source.value().disks[0].vmdk_path, "/vm/shared/base.vmdk");
}

TEST_F(ResolveCloneSourceTest, APlainVmdkIsOneDiskWithoutAVm) {
  storage_.SetFile("/vm/base.vmdk", "# Disk DescriptorFile\n");
  auto source = ResolveCloneSource(storage_, "/vm/base.vmdk");
  ASSERT_TRUE(source) << source.error().message();
  EXPECT_FALSE(source.value().vm);
  ASSERT_EQ(source.value().disks.size(), 1u);
  EXPECT_EQ(source.value().disks[0].vmdk_path, "/vm/base.vmdk");
  EXPECT_EQ(source.value().disks[0].name, "base");
}

TEST_F(ResolveCloneSourceTest, AMissingNvramIsNotCopied) {
  ASSERT_TRUE(storage_.Remove("/vm/golden/golden.nvram").ok());
  auto source = ResolveCloneSource(storage_, "/vm/golden");
  ASSERT_TRUE(source) << source.error().message();
  EXPECT_EQ(source.value().vm->nvram_path, std::nullopt);
}

TEST_F(ResolveCloneSourceTest, RefusesADirectoryWithoutVmx) {
  ASSERT_TRUE(storage_.CreateDirectory("/vm/empty").ok());
  storage_.SetFile("/vm/empty/notes.txt", "hi");
  auto source = ResolveCloneSource(storage_, "/vm/empty");
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().code(), ENOENT);
  EXPECT_EQ(source.error().message(),
            "/vm/empty: no .vmx file in this directory (give a VM directory, a .vmx or a .vmdk)");
}

TEST_F(ResolveCloneSourceTest, RefusesADirectoryWithSeveralVmx) {
  storage_.SetFile("/vm/golden/Other.VMX", "scsi0:0.fileName = \"x.vmdk\"\n");
  auto source = ResolveCloneSource(storage_, "/vm/golden");
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().code(), EINVAL);
  EXPECT_EQ(source.error().message(),
            "/vm/golden: 2 .vmx files (Other.VMX, golden.vmx); give the path of the one to clone");
}

TEST_F(ResolveCloneSourceTest, RefusesAMalformedVmxNamingItAndTheLine) {
  storage_.SetFile("/vm/golden/golden.vmx", "scsi0:0.fileName = \"golden.vmdk\"\ngarbage\n");
  auto source = ResolveCloneSource(storage_, "/vm/golden");
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().message(),
            "/vm/golden/golden.vmx: line 2: no '=' (expected key = \"value\")");
}

TEST_F(ResolveCloneSourceTest, RefusesAManagedVmDirectory) {
  ASSERT_TRUE(storage_.CreateDirectory("/vm/golden/.clonefs").ok());
  auto source = ResolveCloneSource(storage_, "/vm/golden");
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().code(), ENOTSUP);
  EXPECT_NE(source.error().message().find("managed by clonefs"), std::string::npos);
}

TEST_F(ResolveCloneSourceTest, AcceptsACloneDirectoryWhenAsked) {
  ASSERT_TRUE(storage_.CreateDirectory("/vm/golden/.clonefs").ok());
  for (const char* given : {"/vm/golden/", "/vm/golden/golden.vmx"}) {
    auto source = ResolveCloneSource(storage_, given, {.accept_linked_clones = true});
    ASSERT_TRUE(source) << source.error().message();
    EXPECT_EQ(source.value().linked_clone_dir, "/vm/golden") << given;
    ASSERT_TRUE(source.value().vm) << given;
    EXPECT_EQ(source.value().vm->nvram_path, "/vm/golden/golden.nvram");
    ASSERT_EQ(source.value().disks.size(), 1u);
    EXPECT_EQ(source.value().disks[0].vmdk_path, "/vm/golden/golden.vmdk");
  }
}

TEST_F(ResolveCloneSourceTest, AcceptsACloneOfAPlainVmdkWhichHasNoVmx) {
  ASSERT_TRUE(storage_.CreateDirectory("/vm/c1").ok());
  ASSERT_TRUE(storage_.CreateDirectory("/vm/c1/.clonefs").ok());
  auto source = ResolveCloneSource(storage_, "/vm/c1", {.accept_linked_clones = true});
  ASSERT_TRUE(source) << source.error().message();
  EXPECT_EQ(source.value().linked_clone_dir, "/vm/c1");
  EXPECT_FALSE(source.value().vm);
  EXPECT_TRUE(source.value().disks.empty());
  // Without the option it is what it always was: a directory without a .vmx.
  auto refused = ResolveCloneSource(storage_, "/vm/c1");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ENOENT);
}

TEST_F(ResolveCloneSourceTest, RefusesAMissingSource) {
  auto source = ResolveCloneSource(storage_, "/vm/absent.vmx");
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().code(), ENOENT);
  EXPECT_NE(source.error().message().find("/vm/absent.vmx"), std::string::npos);
}

}  // namespace
}  // namespace tools
