// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/linked_clone.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <utility>

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
  auto config = CreateLinkedClone(storage_, {"/vm/base.vmdk", "/vm/c1", "", ""});
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config.value().display_name, "c1");
  ASSERT_EQ(config.value().disks.size(), 1u);
  const engine::CloneDisk& disk = config.value().disks[0];
  EXPECT_EQ(disk.name, "base");
  EXPECT_EQ(disk.capacity_bytes, 1u << 20);
  EXPECT_EQ(disk.parent_fingerprint.files.size(), 2u);  // descriptor and flat extent

  EXPECT_EQ(storage_.ListDirectory("/vm/c1/.clonefs").value(),
            (std::vector<std::string>{"base.delta", "base.map", "base.vmdk", "clone.json", "lock"}));
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
  auto config = CreateLinkedClone(storage_, {"/vm/base.vmdk", "/vm/c1", "", ""});
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code(), EEXIST);
  EXPECT_EQ(config.error().message(), "/vm/c1: already exists");
  EXPECT_EQ(Listing(), before);
}

TEST_F(LinkedCloneTest, BrokenParentIsRefusedBeforeAnythingIsMade) {
  storage_.SetFile("/vm/base-flat.vmdk", std::vector<std::byte>(1000));  // shorter than needed
  auto before = Listing();
  auto config = CreateLinkedClone(storage_, {"/vm/base.vmdk", "/vm/c1", "", ""});
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
    auto config = CreateLinkedClone(storage, {"/vm/base.vmdk", "/vm/c1", "", ""});
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
  ASSERT_TRUE(CreateLinkedClone(storage_, {"/vm/base.vmdk", "/vm/c1", "first", ""}));
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

// A VM directory: a .vmx with two disks (one beside it, one in a subdirectory), an nvram,
// and the files a hypervisor leaves that a clone must not copy.
class LinkedVmCloneTest : public ::testing::Test {
 protected:
  static constexpr const char* kVmx =
      "#!/usr/bin/vmware\r\n"
      ".encoding = \"UTF-8\"\r\n"
      "displayName = \"Golden\"\r\n"
      "scsi0.present = \"TRUE\"\r\n"
      "scsi0:0.fileName = \"base.vmdk\"\r\n"
      "sata0:1.fileName = \"data/extra.vmdk\"\r\n"
      "ide1:0.fileName = \"install.iso\"\r\n"
      "nvram = \"golden.nvram\"\r\n"
      "uuid.bios = \"56 4d 00 11 22 33 44 55-66 77 88 99 aa bb cc dd\"\r\n"
      "ethernet0.generatedAddress = \"00:0c:29:33:44:55\"\r\n";

  void SetUp() override {
    for (const char* dir : {"/vm", "/vm/golden", "/vm/golden/data", "/vm/golden/golden.vmx.lck"}) {
      ASSERT_TRUE(storage_.CreateDirectory(dir).ok());
    }
    AddFlatDisk(storage_, "/vm/golden/base");
    AddFlatDisk(storage_, "/vm/golden/data/extra");
    storage_.SetFile("/vm/golden/golden.vmx", kVmx);
    storage_.SetFile("/vm/golden/golden.nvram", "nvram contents");
    for (const char* other : {"vmware.log", "golden.vmss", "golden-1a2b.vmem", "golden.vmxf",
                              "golden.vmx.lck/M12345.lck"}) {
      storage_.SetFile(std::string("/vm/golden/") + other, "not copied");
    }
  }

  static void AddFlatDisk(MemoryStorage& storage, const std::string& stem) {
    storage.SetFile(stem + "-flat.vmdk", std::vector<std::byte>(1 << 20, std::byte{7}));
    const std::string name = stem.substr(stem.rfind('/') + 1);
    storage.SetFile(stem + ".vmdk",
                    "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\n"
                    "createType=\"monolithicFlat\"\n# Extent description\n"
                    "RW 2048 FLAT \"" +
                        name + "-flat.vmdk\" 0\n");
  }

  std::string Text(const std::string& path) {
    auto bytes = storage_.GetFile(path);
    if (!bytes) return "(missing)";
    return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  }

  MemoryStorage storage_;
};

TEST_F(LinkedVmCloneTest, ClonesEveryDiskAndWritesTheClonesVmx) {
  for (const char* source : {"/vm/golden", "/vm/golden/golden.vmx"}) {
    SCOPED_TRACE(source);
    const std::string dest = source == std::string("/vm/golden") ? "/vm/c1" : "/vm/c2";
    const std::string dest_name = dest.substr(4);
    auto config = CreateLinkedClone(storage_, {source, dest, "", ""});
    ASSERT_TRUE(config) << config.error().message();
    EXPECT_EQ(config.value().display_name, dest_name);
    EXPECT_EQ(config.value().source, source);
    EXPECT_EQ(config.value().vmx, dest_name + ".vmx");
    ASSERT_EQ(config.value().disks.size(), 2u);
    EXPECT_EQ(config.value().disks[0].name, "base");
    EXPECT_EQ(config.value().disks[0].parent_path, "/vm/golden/base.vmdk");
    EXPECT_EQ(config.value().disks[1].name, "extra");
    EXPECT_EQ(config.value().disks[1].parent_path, "/vm/golden/data/extra.vmdk");
    EXPECT_EQ(config.value().disks[1].parent_fingerprint.files.size(), 2u);

    // Only the .vmx and the nvram are copied: no log, lock, memory or suspend file.
    EXPECT_EQ(storage_.ListDirectory(dest).value(),
              (std::vector<std::string>{".clonefs", dest_name + ".nvram", dest_name + ".vmx"}));
    EXPECT_EQ(storage_.ListDirectory(dest + "/.clonefs").value(),
              (std::vector<std::string>{"base.delta", "base.map", "base.vmdk", "clone.json",
                                        "extra.delta", "extra.map", "extra.vmdk", "lock"}));
    EXPECT_EQ(Text(dest + "/" + dest_name + ".nvram"), "nvram contents");
    EXPECT_EQ(Text(dest + "/" + dest_name + ".vmx"),
              "#!/usr/bin/vmware\r\n"
              ".encoding = \"UTF-8\"\r\n"
              "displayName = \"" +
                  dest_name +
                  "\"\r\n"
                  "scsi0.present = \"TRUE\"\r\n"
                  "scsi0:0.fileName = \"base.vmdk\"\r\n"
                  "sata0:1.fileName = \"extra.vmdk\"\r\n"
                  "ide1:0.fileName = \"install.iso\"\r\n"
                  "nvram = \"" +
                  dest_name + ".nvram\"\r\n");
    EXPECT_EQ(storage_.Stat(dest + "/" + dest_name + ".vmx").value().mode & 0777, 0644u);

    auto reloaded = LoadCloneConfig(storage_, dest);
    ASSERT_TRUE(reloaded) << reloaded.error().message();
    EXPECT_EQ(reloaded.value(), config.value());
  }
  for (const char* parent : {"/vm/golden/base.vmdk", "/vm/golden/base-flat.vmdk",
                             "/vm/golden/data/extra.vmdk", "/vm/golden/data/extra-flat.vmdk"}) {
    EXPECT_EQ(storage_.Stat(parent).value().mode & 0222, 0u) << parent;
  }
  EXPECT_EQ(Text("/vm/golden/golden.vmx"), kVmx) << "the parent's .vmx is not touched";
}

TEST_F(LinkedVmCloneTest, NameOptionBecomesTheDisplayName) {
  auto config = CreateLinkedClone(storage_, {"/vm/golden", "/vm/c1", "Test runner 7", ""});
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config.value().display_name, "Test runner 7");
  EXPECT_NE(Text("/vm/c1/c1.vmx").find("displayName = \"Test runner 7\"\r\n"), std::string::npos);
}

TEST_F(LinkedVmCloneTest, AMissingDiskIsRefusedBeforeAnyParentIsTouched) {
  ASSERT_TRUE(storage_.Remove("/vm/golden/data/extra.vmdk").ok());
  auto before = storage_.ListDirectory("/vm").value();
  auto config = CreateLinkedClone(storage_, {"/vm/golden", "/vm/c1", "", ""});
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code(), ENOENT);
  EXPECT_NE(config.error().message().find("/vm/golden/golden.vmx: sata0:1.fileName: "),
            std::string::npos)
      << config.error().message();
  EXPECT_NE(config.error().message().find("extra.vmdk"), std::string::npos);
  EXPECT_EQ(storage_.ListDirectory("/vm").value(), before);
  EXPECT_NE(storage_.Stat("/vm/golden/base.vmdk").value().mode & 0200, 0u)
      << "the first disk was made read-only although the clone was refused";
}

TEST_F(LinkedVmCloneTest, BadVmxIsRefusedAndNothingIsMade) {
  const std::pair<const char*, const char*> cases[] = {
      {"scsi0:0.fileName = \"base.vmdk\"\nthis line has no equals sign\n", "line 2: no '='"},
      {"displayName = \"x\"\n", "no disks"},
      {"scsi0:0.fileName = \"base.vmdk\"\nscsi0:1.fileName = \"data/base.vmdk\"\n",
       "both disks named 'base'"},
  };
  for (const auto& [vmx, cause] : cases) {
    SCOPED_TRACE(vmx);
    storage_.SetFile("/vm/golden/golden.vmx", vmx);
    auto before = storage_.ListDirectory("/vm").value();
    auto config = CreateLinkedClone(storage_, {"/vm/golden", "/vm/c1", "", ""});
    ASSERT_FALSE(config);
    EXPECT_EQ(config.error().code(), EINVAL);
    EXPECT_EQ(config.error().message().rfind("/vm/golden/golden.vmx: ", 0), 0u)
        << config.error().message();
    EXPECT_NE(config.error().message().find(cause), std::string::npos) << config.error().message();
    EXPECT_EQ(storage_.ListDirectory("/vm").value(), before);
  }
}

TEST_F(LinkedVmCloneTest, FailureAtAnyStepLeavesNoCloneAndNoTemporaryDirectory) {
  for (int fail_at = 0;; ++fail_at) {
    MemoryStorage storage;
    for (const char* dir : {"/vm", "/vm/golden", "/vm/golden/data"}) {
      ASSERT_TRUE(storage.CreateDirectory(dir).ok());
    }
    AddFlatDisk(storage, "/vm/golden/base");
    AddFlatDisk(storage, "/vm/golden/data/extra");
    storage.SetFile("/vm/golden/golden.vmx", kVmx);
    storage.SetFile("/vm/golden/golden.nvram", "nvram contents");
    int calls = 0;
    storage.SetFaultHook([&](MemoryStorage::Op, const std::string& path) {
      return calls++ == fail_at ? common::Status::FromErrno(ENOSPC, path) : common::Status::Ok();
    });
    auto config = CreateLinkedClone(storage, {"/vm/golden", "/vm/c1", "", ""});
    storage.SetFaultHook(nullptr);
    auto listing = storage.ListDirectory("/vm").value();
    if (config) {
      EXPECT_EQ(listing, (std::vector<std::string>{"c1", "golden"}));
      EXPECT_GT(fail_at, 6) << "the clone should make several durable writes";
      break;
    }
    EXPECT_EQ(config.error().code(), ENOSPC) << "failing operation " << fail_at;
    EXPECT_EQ(listing, (std::vector<std::string>{"golden"})) << "failing operation " << fail_at;
    ASSERT_LT(fail_at, 100);
  }
}

TEST_F(LinkedCloneTest, InfoOfSomethingElseSaysItIsNotAClone) {
  auto info = CloneInfo(storage_, "/vm");
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code(), ENOENT);
  EXPECT_NE(info.error().message().find("not a clone"), std::string::npos);
}

}  // namespace
}  // namespace tools
