// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/clone_vmx.h"

#include <gtest/gtest.h>

namespace tools {
namespace {

VmxFile Parse(std::string_view text) {
  auto vmx = VmxFile::Parse(text, "golden.vmx");
  EXPECT_TRUE(vmx) << vmx.error().message();
  return vmx ? std::move(vmx).value() : VmxFile();
}

TEST(CloneVmxTest, InstanceIdentityKeys) {
  for (const char* key : {"uuid.bios", "UUID.BIOS", "uuid.location", "vc.uuid", "vmci0.id",
                          "sched.swap.derivedName", "checkpoint.vmState", "migrate.hostLog",
                          "ethernet0.generatedAddress", "ethernet12.GENERATEDADDRESSOFFSET"}) {
    EXPECT_TRUE(IsInstanceIdentityKey(key)) << key;
  }
  for (const char* key :
       {"uuid.action", "displayName", "ethernet0.address", "ethernet0.addressType",
        "ethernet.generatedAddress", "ethernetX.generatedAddress", "ethernet0.generatedAddressX",
        "scsi0:0.fileName", "nvram", "guestinfo.uuid.bios"}) {
    EXPECT_FALSE(IsInstanceIdentityKey(key)) << key;
  }
}

TEST(CloneVmxTest, RewritesNameDisksAndNvramDropsIdentityAndKeepsEverythingElse) {
  const VmxFile parent = Parse(
      "#!/usr/bin/vmware\r\n"
      ".encoding = \"UTF-8\"\r\n"
      "displayName = \"Golden\"\r\n"
      "# the boot disk\r\n"
      "scsi0:0.fileName = \"golden.vmdk\"\r\n"
      "scsi0:0.present = \"TRUE\"\r\n"
      "sata0:1.fileName = \"/data/extra.vmdk\"\r\n"
      "ide1:0.fileName = \"install.iso\"\r\n"
      "uuid.bios = \"56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc\"\r\n"
      "uuid.location = \"56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc\"\r\n"
      "vc.uuid = \"52 00 11 22 33 44 55 66-77 88 99 aa bb cc dd ee\"\r\n"
      "ethernet0.addressType = \"generated\"\r\n"
      "ethernet0.generatedAddress = \"00:0c:29:12:34:56\"\r\n"
      "ethernet0.generatedAddressOffset = \"0\"\r\n"
      "ethernet1.addressType = \"static\"\r\n"
      "ethernet1.address = \"00:50:56:00:00:01\"\r\n"
      "nvram = \"golden.nvram\"\r\n"
      "vmci0.id = \"-1234567\"\r\n"
      "sched.swap.derivedName = \"/vmfs/volumes/ds/golden/golden-1a2b.vswp\"\r\n"
      "checkpoint.vmState = \"golden.vmss\"\r\n"
      "migrate.hostLog = \"golden-1a2b.hlog\"\r\n"
      "memsize = 2048\r\n");
  CloneVmxEdits edits;
  edits.display_name = "clone \"one\"";
  edits.disks = {{"scsi0:0", "scsi0:0.fileName", "/vm/golden.vmdk", "golden"},
                 {"sata0:1", "sata0:1.fileName", "/data/extra.vmdk", "extra"}};
  edits.nvram_name = "c1.nvram";
  EXPECT_EQ(MakeCloneVmx(parent, edits).Text(),
            "#!/usr/bin/vmware\r\n"
            ".encoding = \"UTF-8\"\r\n"
            "displayName = \"clone |22one|22\"\r\n"
            "# the boot disk\r\n"
            "scsi0:0.fileName = \"golden.vmdk\"\r\n"
            "scsi0:0.present = \"TRUE\"\r\n"
            "sata0:1.fileName = \"extra.vmdk\"\r\n"
            "ide1:0.fileName = \"install.iso\"\r\n"
            "ethernet0.addressType = \"generated\"\r\n"
            "ethernet1.addressType = \"static\"\r\n"
            "ethernet1.address = \"00:50:56:00:00:01\"\r\n"
            "nvram = \"c1.nvram\"\r\n"
            "memsize = 2048\r\n");
}

TEST(CloneVmxTest, AddsADisplayNameButNoNvramWhenTheParentHasNone) {
  const VmxFile parent = Parse("scsi0:0.fileName = \"sub/disk.vmdk\"\n");
  CloneVmxEdits edits;
  edits.display_name = "c1";
  edits.disks = {{"scsi0:0", "scsi0:0.fileName", "/vm/sub/disk.vmdk", "disk"}};
  edits.nvram_name = "c1.nvram";
  EXPECT_EQ(MakeCloneVmx(parent, edits).Text(),
            "scsi0:0.fileName = \"disk.vmdk\"\ndisplayName = \"c1\"\n");
}

}  // namespace
}  // namespace tools
