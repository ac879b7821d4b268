// SPDX-License-Identifier: Apache-2.0
#pragma once

// Managed VMs on real files for the tools tests: a flat 1 MiB parent VMDK (every byte
// 0x07) cloned into `vm`, writes through the engine as a mount makes them, snapshot
// points and clones of them through the library calls clonectl makes.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fs/engine/clone_config.h"
#include "fs/engine/disk_chain.h"
#include "tests/support/test_support.h"
#include "tools/lib/linked_clone.h"
#include "tools/lib/snapshot.h"

namespace tools {

class ManagedVmTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kCapacity = 1 << 20;

  void SetUp() override {
    std::ofstream(Path("base-flat.vmdk")) << std::string(kCapacity, '\x07');
    std::ofstream(Path("base.vmdk"))
        << "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\n"
           "createType=\"monolithicFlat\"\n# Extent description\n"
           "RW 2048 FLAT \"base-flat.vmdk\" 0\n";
    auto config = CreateLinkedClone(storage_, {Path("base.vmdk"), Path("vm"), "", ""});
    ASSERT_TRUE(config) << config.error().message();
  }

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  // Writes `fill` over blocks [first, first + count) of the VM's disk, as a mount would.
  void Write(const std::string& vm, uint64_t first, uint64_t count, char fill) {
    auto config = engine::LoadCloneConfig(storage_, vm);
    ASSERT_TRUE(config) << config.error().message();
    auto disk = engine::OpenCloneDisk(storage_, vm + "/.clonefs", config.value().disks[0], true);
    ASSERT_TRUE(disk) << disk.error().message();
    std::vector<std::byte> data(count * engine::kBlockBytes, std::byte(fill));
    ASSERT_TRUE(disk.value()->Write(first * engine::kBlockBytes, data).ok());
    ASSERT_TRUE(disk.value()->delta().Close().ok());
  }

  void Snapshot(const std::string& vm, const std::string& name) {
    auto snapshot = TakeSnapshot(storage_, vm, name);
    ASSERT_TRUE(snapshot) << snapshot.error().message();
  }

  // A linked clone of `vm` at `snapshot` ("": a new snapshot point for-NAME first).
  void Clone(const std::string& vm, const std::string& name, const std::string& snapshot) {
    auto config = CreateLinkedClone(storage_, {vm, Path(name), "", snapshot});
    ASSERT_TRUE(config) << config.error().message();
  }

  engine::CloneConfig Config(const std::string& vm) {
    auto config = engine::LoadCloneConfig(storage_, vm);
    EXPECT_TRUE(config) << config.error().message();
    return config ? config.value() : engine::CloneConfig{};
  }

  // Overwrites one byte of a (read-only) layer file, as damage on the host would.
  void FlipByte(const std::string& path, uint64_t offset) {
    namespace fs = std::filesystem;
    fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(file) << path;
    file.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    file.get(c);
    file.seekp(static_cast<std::streamoff>(offset));
    file.put(static_cast<char>(c ^ 0x5a));
  }

  common::Storage& storage_ = common::PosixStorage();
  testing_support::TempDir dir_;
};

}  // namespace tools
