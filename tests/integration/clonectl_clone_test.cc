// SPDX-License-Identifier: Apache-2.0
// `clonectl clone SRC DEST --linked` with the real binary, for each kind of SRC: a VM
// directory holding a .vmx, the .vmx itself, and a plain .vmdk. Checks what DEST holds
// (docs/clone-layout.md), that the parent is left read-only and otherwise untouched, and
// that every refusal is one line naming the file and leaves nothing behind.

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

constexpr uint64_t kCapacity = 16 * 1024 * 1024;

// As VMware Workstation writes it, plus a comment, a disk that is not present and a CD.
constexpr const char* kGoldenVmx =
    "#!/usr/bin/vmware\n"
    ".encoding = \"UTF-8\"\n"
    "config.version = \"8\"\n"
    "virtualHW.version = \"19\"\n"
    "displayName = \"Golden image\"\n"
    "# the boot disk\n"
    "scsi0.present = \"TRUE\"\n"
    "scsi0.virtualDev = \"lsilogic\"\n"
    "scsi0:0.present = \"TRUE\"\n"
    "scsi0:0.fileName = \"golden.vmdk\"\n"
    "sata0.present = \"TRUE\"\n"
    "sata0:1.present = \"TRUE\"\n"
    "sata0:1.fileName = \"data/extra.vmdk\"\n"
    "sata0:2.present = \"FALSE\"\n"
    "sata0:2.fileName = \"old.vmdk\"\n"
    "ide1:0.deviceType = \"cdrom-image\"\n"
    "ide1:0.fileName = \"/isos/install.iso\"\n"
    "nvram = \"golden.nvram\"\n"
    "ethernet0.present = \"TRUE\"\n"
    "ethernet0.addressType = \"generated\"\n"
    "ethernet0.generatedAddress = \"00:0c:29:12:34:56\"\n"
    "ethernet0.generatedAddressOffset = \"0\"\n"
    "ethernet1.present = \"TRUE\"\n"
    "ethernet1.addressType = \"static\"\n"
    "ethernet1.address = \"00:50:56:3f:00:01\"\n"
    "uuid.bios = \"56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc\"\n"
    "uuid.location = \"56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc\"\n"
    "vc.uuid = \"52 00 11 22 33 44 55 66-77 88 99 aa bb cc dd ee\"\n"
    "vmci0.id = \"1861462781\"\n"
    "memsize = \"2048\"\n";

class ClonectlCloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(golden_ + "/data");
    fs::create_directories(golden_ + "/golden.vmx.lck");
    for (const std::string& disk : {golden_ + "/golden.vmdk", golden_ + "/data/extra.vmdk"}) {
      ASSERT_TRUE(
          RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", disk, std::to_string(kCapacity)}));
    }
    ASSERT_TRUE(QemuIo(golden_ + "/golden.vmdk", {"write -P 0x5a 0 64k"}));
    WriteText(golden_ + "/golden.vmx", kGoldenVmx);
    WriteText(golden_ + "/golden.nvram", std::string("NVRAM\0\x01\x02", 8));
    for (const char* other : {"vmware.log", "golden.vmss", "golden-1a2b.vmem", "golden.vmxf",
                              "golden.vmx.lck/M1.lck"}) {
      WriteText(golden_ + "/" + other, "must not be copied");
    }
  }

  std::vector<std::string> Entries(const std::string& dir) const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  static bool IsWritable(const std::string& path) {
    return (fs::status(path).permissions() & (fs::perms::owner_write | fs::perms::group_write |
                                              fs::perms::others_write)) != fs::perms::none;
  }

  TempDir dir_;
  const std::string golden_ = dir_ / "golden";
};

TEST_F(ClonectlCloneTest, ClonesAVmDirectory) {
  const std::string c1 = dir_ / "c1";
  CommandResult r = Clonectl({"clone", golden_, c1, "--linked", "--name", "CI runner"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("golden.vmdk"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("extra.vmdk"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("c1.vmx"), std::string::npos) << r.out;

  // The .vmx and the nvram, nothing else of the VM directory.
  EXPECT_EQ(Entries(c1), (std::vector<std::string>{".clonefs", "c1.nvram", "c1.vmx"}));
  EXPECT_EQ(ReadText(c1 + "/c1.nvram"), std::string("NVRAM\0\x01\x02", 8));
  EXPECT_EQ(ReadText(c1 + "/c1.vmx"),
            "#!/usr/bin/vmware\n"
            ".encoding = \"UTF-8\"\n"
            "config.version = \"8\"\n"
            "virtualHW.version = \"19\"\n"
            "displayName = \"CI runner\"\n"
            "# the boot disk\n"
            "scsi0.present = \"TRUE\"\n"
            "scsi0.virtualDev = \"lsilogic\"\n"
            "scsi0:0.present = \"TRUE\"\n"
            "scsi0:0.fileName = \"golden.vmdk\"\n"
            "sata0.present = \"TRUE\"\n"
            "sata0:1.present = \"TRUE\"\n"
            "sata0:1.fileName = \"extra.vmdk\"\n"
            "sata0:2.present = \"FALSE\"\n"
            "sata0:2.fileName = \"old.vmdk\"\n"
            "ide1:0.deviceType = \"cdrom-image\"\n"
            "ide1:0.fileName = \"/isos/install.iso\"\n"
            "nvram = \"c1.nvram\"\n"
            "ethernet0.present = \"TRUE\"\n"
            "ethernet0.addressType = \"generated\"\n"
            "ethernet1.present = \"TRUE\"\n"
            "ethernet1.addressType = \"static\"\n"
            "ethernet1.address = \"00:50:56:3f:00:01\"\n"
            "memsize = \"2048\"\n");

  nlohmann::json config = ParseJson(ReadText(c1 + "/.clonefs/clone.json"));
  ASSERT_TRUE(config.is_object());
  EXPECT_EQ(config["vmx"], "c1.vmx");
  EXPECT_EQ(config["display_name"], "CI runner");
  ASSERT_EQ(config["disks"].size(), 2u);
  EXPECT_EQ(config["disks"][0]["name"], "golden");
  EXPECT_EQ(config["disks"][0]["parent_path"], fs::canonical(golden_ + "/golden.vmdk").string());
  EXPECT_EQ(config["disks"][1]["name"], "extra");
  EXPECT_EQ(config["disks"][1]["capacity_bytes"], kCapacity);

  CommandResult info = Clonectl({"info", c1, "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  nlohmann::json json = ParseJson(info.out);
  ASSERT_TRUE(json.is_object()) << info.out;
  for (const auto& disk : json["disks"]) EXPECT_TRUE(disk["parent_ok"].get<bool>()) << disk;

  EXPECT_FALSE(IsWritable(golden_ + "/golden.vmdk"));
  EXPECT_FALSE(IsWritable(golden_ + "/data/extra.vmdk"));
  EXPECT_EQ(ReadText(golden_ + "/golden.vmx"), kGoldenVmx);
  EXPECT_EQ(Entries(dir_.path()), (std::vector<std::string>{"c1", "golden"}));
}

TEST_F(ClonectlCloneTest, ClonesAGivenVmx) {
  const std::string c2 = dir_ / "c2";
  CommandResult r = Clonectl({"clone", golden_ + "/golden.vmx", c2});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Entries(c2), (std::vector<std::string>{".clonefs", "c2.nvram", "c2.vmx"}));
  const std::string vmx = ReadText(c2 + "/c2.vmx");
  EXPECT_NE(vmx.find("displayName = \"c2\"\n"), std::string::npos) << vmx;
  EXPECT_NE(vmx.find("sata0:1.fileName = \"extra.vmdk\"\n"), std::string::npos) << vmx;
  EXPECT_EQ(vmx.find("uuid.bios"), std::string::npos) << vmx;
}

TEST_F(ClonectlCloneTest, APlainVmdkStillGivesACloneWithoutVmx) {
  const std::string c3 = dir_ / "c3";
  CommandResult r = Clonectl({"clone", golden_ + "/data/extra.vmdk", c3});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Entries(c3), std::vector<std::string>{".clonefs"});
  nlohmann::json config = ParseJson(ReadText(c3 + "/.clonefs/clone.json"));
  EXPECT_TRUE(config["vmx"].is_null());
  EXPECT_EQ(config["disks"][0]["name"], "extra");
}

TEST_F(ClonectlCloneTest, RefusesADirectoryWithoutVmx) {
  fs::create_directories(dir_ / "empty");
  EXPECT_TRUE(IsOneLineError(Clonectl({"clone", dir_ / "empty", dir_ / "c1"}), "no .vmx"));
  EXPECT_EQ(Entries(dir_.path()), (std::vector<std::string>{"empty", "golden"}));
}

TEST_F(ClonectlCloneTest, RefusesADirectoryWithSeveralVmx) {
  WriteText(golden_ + "/second.vmx", kGoldenVmx);
  EXPECT_TRUE(IsOneLineError(Clonectl({"clone", golden_, dir_ / "c1"}), "2 .vmx files"));
  EXPECT_EQ(Entries(dir_.path()), std::vector<std::string>{"golden"});
}

TEST_F(ClonectlCloneTest, RefusesBadVmxAndLeavesEverythingAsItWas) {
  const std::pair<std::string, std::string> cases[] = {
      {std::string(kGoldenVmx) + "scsi0:1.fileName = \"gone.vmdk\"\n", "gone.vmdk"},
      {"displayName = \"no disks\"\nide1:0.fileName = \"x.iso\"\n", "no disks"},
      {"config.version = \"8\"\n# fine\nthis line is broken\n", "line 3"},
      {"scsi0:0.fileName = \"golden.vmdk\"\nsata0:0.fileName = \"data/golden.vmdk\"\n",
       "both disks named 'golden'"},
  };
  for (const auto& [vmx, cause] : cases) {
    SCOPED_TRACE(cause);
    WriteText(golden_ + "/golden.vmx", vmx);
    CommandResult r = Clonectl({"clone", golden_, dir_ / "c1"});
    EXPECT_TRUE(IsOneLineError(r, "golden.vmx"));
    EXPECT_TRUE(IsOneLineError(r, cause));
    EXPECT_EQ(Entries(dir_.path()), std::vector<std::string>{"golden"});
    EXPECT_TRUE(IsWritable(golden_ + "/golden.vmdk")) << "a refused clone protected its parent";
  }
}

}  // namespace
}  // namespace integration
