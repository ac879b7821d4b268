// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/linked_clone.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "common/memory_storage.h"
#include "fs/engine/delta_layer.h"
#include "tools/lib/clone_info.h"

namespace tools {
namespace {

using common::MemoryStorage;

class LinkedCloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(storage_.CreateDirectory("/vm").ok());
    storage_.SetFile("/vm/base-flat.vmdk", std::vector<std::byte>(1 << 20, std::byte{7}));
    storage_.SetFile("/vm/base.vmdk",
                     "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\n"
                     "createType=\"monolithicFlat\"\n# Extent description\n"
                     "RW 2048 FLAT \"base-flat.vmdk\" 0\n");
  }

  // Paths under /vm, for checking that nothing else appeared.
  std::vector<std::string> Listing() { return storage_.ListDirectory("/vm").value(); }

  MemoryStorage storage_;
};

TEST_F(LinkedCloneTest, MakesMetadataAndEmptyDeltaAndProtectsTheParent) {
  auto config = CreateLinkedClone(storage_, {"/vm/base.vmdk", "/vm/c1", ""});
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config.value().display_name, "c1");
  ASSERT_EQ(config.value().disks.size(), 1u);
  const engine::CloneDisk& disk = config.value().disks[0];
  EXPECT_EQ(disk.name, "base");
  EXPECT_EQ(disk.capacity_bytes, 1u << 20);
  EXPECT_EQ(disk.parent_fingerprint.files.size(), 2u);  // descriptor and flat extent

  EXPECT_EQ(storage_.ListDirectory("/vm/c1/.clonefs").value(),
            (std::vector<std::string>{"base.delta", "base.map", "clone.json", "lock"}));
  auto layer = engine::DeltaLayer::Open(
      storage_, {"/vm/c1/.clonefs/base.delta", "/vm/c1/.clonefs/base.map"}, false);
  ASSERT_TRUE(layer) << layer.error().message();
  EXPECT_EQ(engine::ToHex(layer.value()->header().layer_id), disk.layer_id);
  EXPECT_EQ(layer.value()->header().parent_fingerprint,
            engine::Digest(disk.parent_fingerprint));
  EXPECT_TRUE(layer.value()->header().clean_shutdown);
  EXPECT_EQ(layer.value()->RunLength(0, layer.value()->block_count()),
            layer.value()->block_count());
  EXPECT_FALSE(layer.value()->IsOwned(0));

  for (const char* parent : {"/vm/base.vmdk", "/vm/base-flat.vmdk"}) {
    EXPECT_EQ(storage_.Stat(parent).value().mode & 0222, 0u) << parent;
  }
  auto reloaded = LoadCloneConfig(storage_, "/vm/c1");
  ASSERT_TRUE(reloaded) << reloaded.error().message();
  EXPECT_EQ(reloaded.value(), config.value());
}

TEST_F(LinkedCloneTest, RefusesExistingDestinationAndChangesNothing) {
  ASSERT_TRUE(storage_.CreateDirectory("/vm/c1").ok());
  auto before = Listing();
  auto config = CreateLinkedClone(storage_, {"/vm/base.vmdk", "/vm/c1", ""});
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code(), EEXIST);
  EXPECT_EQ(config.error().message(), "/vm/c1: already exists");
  EXPECT_EQ(Listing(), before);
}

TEST_F(LinkedCloneTest, BrokenParentIsRefusedBeforeAnythingIsMade) {
  storage_.SetFile("/vm/base-flat.vmdk", std::vector<std::byte>(1000));  // shorter than needed
  auto before = Listing();
  auto config = CreateLinkedClone(storage_, {"/vm/base.vmdk", "/vm/c1", ""});
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().message().find("base-flat.vmdk"), std::string::npos);
  EXPECT_EQ(Listing(), before);
}

TEST_F(LinkedCloneTest, FailureAtAnyStepLeavesNoCloneAndNoTemporaryDirectory) {
  // Fail the k-th mutating operation, for every k until the clone succeeds.
  for (int fail_at = 0;; ++fail_at) {
    MemoryStorage storage;
    ASSERT_TRUE(storage.CreateDirectory("/vm").ok());
    storage.SetFile("/vm/base-flat.vmdk", std::vector<std::byte>(1 << 20));
    storage.SetFile("/vm/base.vmdk",
                    "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\n"
                    "createType=\"monolithicFlat\"\n# Extent description\n"
                    "RW 2048 FLAT \"base-flat.vmdk\" 0\n");
    int calls = 0;
    storage.SetFaultHook([&](MemoryStorage::Op, const std::string& path) {
      return calls++ == fail_at ? common::Status::FromErrno(ENOSPC, path) : common::Status::Ok();
    });
    auto config = CreateLinkedClone(storage, {"/vm/base.vmdk", "/vm/c1", ""});
    storage.SetFaultHook(nullptr);
    auto listing = storage.ListDirectory("/vm").value();
    if (config) {
      EXPECT_EQ(listing, (std::vector<std::string>{"base-flat.vmdk", "base.vmdk", "c1"}));
      EXPECT_GT(fail_at, 3) << "the clone should make several durable writes";
      break;
    }
    EXPECT_EQ(config.error().code(), ENOSPC) << "failing operation " << fail_at;
    EXPECT_EQ(listing, (std::vector<std::string>{"base-flat.vmdk", "base.vmdk"}))
        << "failing operation " << fail_at;
    ASSERT_LT(fail_at, 100);
  }
}

TEST_F(LinkedCloneTest, InfoReportsAModifiedParent) {
  ASSERT_TRUE(CreateLinkedClone(storage_, {"/vm/base.vmdk", "/vm/c1", "first"}));
  auto info = CloneInfo(storage_, "/vm/c1");
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info.value()["display_name"], "first");
  EXPECT_TRUE(info.value()["disks"][0]["parent_ok"].get<bool>());
  EXPECT_EQ(info.value()["disks"][0]["owned_bytes"], 0u);

  auto flat = storage_.Open("/vm/base-flat.vmdk", common::OpenMode::kReadWrite).value();
  ASSERT_TRUE(flat->WriteAt(0, std::vector<std::byte>(16, std::byte{1})).ok());
  info = CloneInfo(storage_, "/vm/c1");
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info.value()["disks"][0]["parent_ok"].get<bool>());
  EXPECT_NE(info.value()["disks"][0]["parent_problem"].get<std::string>().find("base-flat.vmdk"),
            std::string::npos);
}

TEST_F(LinkedCloneTest, InfoOfSomethingElseSaysItIsNotAClone) {
  auto info = CloneInfo(storage_, "/vm");
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code(), ENOENT);
  EXPECT_NE(info.error().message().find("not a clone"), std::string::npos);
}

}  // namespace
}  // namespace tools
