// SPDX-License-Identifier: Apache-2.0
// The descriptor a mounted clone presents (vmdk/flat_descriptor.h), checked with QEMU:
// qemu-img must see a monolithicFlat VMDK of the parent's size and content, and keep
// accepting it after qemu-io rewrites its CID.
#include "vmdk/flat_descriptor.h"

#include <gtest/gtest.h>

#include "common/storage.h"
#include "tests/integration/integration_util.h"

namespace integration {
namespace {

class FlatDescriptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", "-o",
                        "adapter_type=ide", parent_, "64M"}));
    ASSERT_TRUE(QemuIo(parent_, {"write -P 0x5a 0 64k", "write -P 0xa5 63M 1M"}));
    auto disk = vmdk::Disk::Open(common::PosixStorage(), parent_);
    ASSERT_TRUE(disk) << disk.error().message();
    WriteText(presented_, vmdk::MakeFlatDescriptor(*disk.value(), "c-flat.vmdk", 0x0badcafe));
    ASSERT_TRUE(RunsOk({testing_support::ClonectlPath(), "export", parent_, dir_ / "c-flat.vmdk"}));
  }

  testing_support::TempDir dir_;
  std::string parent_ = dir_ / "parent.vmdk";
  std::string presented_ = dir_ / "c.vmdk";
};

TEST_F(FlatDescriptorTest, QemuImgSeesAMonolithicFlatDiskOfTheParentsSize) {
  auto r = integration::Run({"qemu-img", "info", "--output=json", presented_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["format"], "vmdk");
  EXPECT_EQ(info["virtual-size"], 64u << 20);
  EXPECT_EQ(info["format-specific"]["data"]["create-type"], "monolithicFlat");
  EXPECT_EQ(info["format-specific"]["data"]["cid"], 0x0badcafe);
}

TEST_F(FlatDescriptorTest, QemuImgComparesEqualToTheParent) {
  EXPECT_TRUE(RunsOk({"qemu-img", "compare", "-f", "vmdk", "-F", "vmdk", parent_, presented_}));
}

TEST_F(FlatDescriptorTest, InheritsAdapterTypeAndGeometryFromTheParent) {
  std::string text = ReadText(presented_);
  EXPECT_NE(text.find("ddb.adapterType = \"ide\""), std::string::npos) << text;
  EXPECT_NE(text.find("ddb.geometry.heads = \"16\""), std::string::npos) << text;
  EXPECT_EQ(text.find("ddb.uuid"), std::string::npos) << text;
  EXPECT_NE(text.find("0badcafe\"\n"), std::string::npos) << "longContentID ends with the CID";
  EXPECT_EQ(text.find("\n\nRW"), std::string::npos) << "no blank line before the extent";
}

TEST_F(FlatDescriptorTest, StillReadableAfterQemuRewritesTheCid) {
  ASSERT_TRUE(QemuIo(presented_, {"write -P 0x11 4k 4k"}));
  auto r = Clonectl({"inspect", "--json", presented_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["create_type"], "monolithicFlat");
  EXPECT_NE(info["cid"], "0badcafe");  // QEMU gave the written disk a new CID
  EXPECT_TRUE(RunsOk({"qemu-io", "-f", "vmdk", "-c", "read -P 0x11 4k 4k", presented_}));
}

}  // namespace
}  // namespace integration
