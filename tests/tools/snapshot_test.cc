// SPDX-License-Identifier: Apache-2.0
// clonectl snapshot and clones of snapshot points, on real files through the engine (the
// mount tests drive the same through clonefs): what each state reads, the records
// written, and that a kill at any step of a snapshot leaves the old state or the new one.
#include "tools/lib/snapshot.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "fs/engine/disk_chain.h"
#include "tests/support/crash_point_storage.h"
#include "tests/support/test_support.h"
#include "tools/lib/dependents.h"
#include "tools/lib/linked_clone.h"
#include "tools/lib/managed_vm.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using engine::kBlockBytes;

constexpr uint64_t kCapacity = 1 << 20;

std::string ReadText(const std::string& path) {
  auto bytes = testing_support::ReadFileBytes(path);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

class SnapshotLibTest : public ::testing::Test {
 protected:
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
    auto config = engine::LoadCloneConfig(storage_, vm).value();
    auto disk = engine::OpenCloneDisk(storage_, vm + "/.clonefs", config.disks[0], true);
    ASSERT_TRUE(disk) << disk.error().message();
    std::vector<std::byte> data(count * kBlockBytes, std::byte(fill));
    ASSERT_TRUE(disk.value()->Write(first * kBlockBytes, data).ok());
    ASSERT_TRUE(disk.value()->delta().Close().ok());
  }

  // The whole disk as the VM reads it now.
  std::string Contents(const std::string& vm) {
    auto config = engine::LoadCloneConfig(storage_, vm);
    EXPECT_TRUE(config) << config.error().message();
    auto disk = engine::OpenCloneDisk(storage_, vm + "/.clonefs", config.value().disks[0], false);
    EXPECT_TRUE(disk) << disk.error().message();
    if (!disk) return "";
    std::string bytes(kCapacity, '\0');
    EXPECT_TRUE(disk.value()->Read(0, std::as_writable_bytes(std::span(bytes))).ok());
    return bytes;
  }

  static std::string Expected(std::initializer_list<std::tuple<uint64_t, uint64_t, char>> writes) {
    std::string bytes(kCapacity, '\x07');
    for (auto [first, count, fill] : writes) {
      std::fill_n(bytes.begin() + first * kBlockBytes, count * kBlockBytes, fill);
    }
    return bytes;
  }

  common::Storage& storage_ = common::PosixStorage();
  testing_support::TempDir dir_;
};

TEST_F(SnapshotLibTest, FreezesTheTopAndStartsAnEmptyOneOverIt) {
  Write(Path("vm"), 3, 2, 'a');
  auto snapshot = TakeSnapshot(storage_, Path("vm"), "s1");
  ASSERT_TRUE(snapshot) << snapshot.error().message();
  auto config = engine::LoadCloneConfig(storage_, Path("vm")).value();
  ASSERT_EQ(config.snapshots.size(), 1u);
  EXPECT_EQ(config.snapshots[0].name, "s1");
  const engine::CloneDisk& disk = config.disks[0];
  ASSERT_EQ(disk.frozen.size(), 1u);
  EXPECT_EQ(disk.parent_layer_id, disk.frozen[0].layer_id);
  EXPECT_EQ(config.snapshots[0].layer_ids, std::vector<std::string>{disk.frozen[0].layer_id});
  // The frozen files are read-only now, and their checksums verify.
  EXPECT_EQ(fs::status(Path("vm/.clonefs/" + disk.frozen[0].map_file)).permissions() &
                fs::perms::owner_write,
            fs::perms::none);
  auto frozen = engine::OpenFrozenLayer(storage_, Path("vm/.clonefs"), disk.frozen[0]).value();
  EXPECT_EQ(frozen->owned_blocks(), 2u);

  Write(Path("vm"), 4, 2, 'b');
  EXPECT_EQ(Contents(Path("vm")), Expected({{3, 2, 'a'}, {4, 2, 'b'}}));
  auto clone = CreateLinkedClone(storage_, {Path("vm"), Path("c1"), "", "s1"});
  ASSERT_TRUE(clone) << clone.error().message();
  EXPECT_EQ(Contents(Path("c1")), Expected({{3, 2, 'a'}}));
  ASSERT_TRUE(clone.value().parent);
  EXPECT_EQ(clone.value().parent->snapshot, "s1");
  auto dependents = ListDependents(storage_, Path("vm/.clonefs"), config.vm_id).value();
  ASSERT_EQ(dependents.size(), 1u);
  EXPECT_EQ(dependents[0].record.path, Path("c1"));
  EXPECT_EQ(dependents[0].problem, "");
  // A dependent moved away without clonectl is noticed.
  fs::rename(Path("c1"), Path("c1-moved"));
  dependents = ListDependents(storage_, Path("vm/.clonefs"), config.vm_id).value();
  EXPECT_EQ(dependents[0].problem, "missing: moved or deleted without clonectl");
}

TEST_F(SnapshotLibTest, NamesAreChecked) {
  for (const std::string& bad : std::vector<std::string>{"", "a/b", "-x", ".", "..", "tab\there",
                                std::string(129, 'n')}) {
    EXPECT_EQ(CheckSnapshotName(bad).code(), EINVAL) << bad;
  }
  EXPECT_TRUE(CheckSnapshotName("before upgrade (2026-11-29)").ok());
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s1"));
  EXPECT_EQ(TakeSnapshot(storage_, Path("vm"), "s1").error().code(), EEXIST);
}

// A kill at every step of a snapshot: afterwards the VM reads what it read before, its
// configuration is the old one or the new one, and the next change removes leftovers.
TEST_F(SnapshotLibTest, AKillAtAnyStepLeavesTheOldOrTheNewState) {
  Write(Path("vm"), 1, 3, 'x');
  const std::string before = Contents(Path("vm"));
  const std::string old_config = ReadText(Path("vm/.clonefs/clone.json"));
  int crashes = 0;
  for (long step = 1;; ++step) {
    fs::remove_all(Path("work"));
    fs::copy(Path("vm"), Path("work"), fs::copy_options::recursive);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      testing_support::CrashPointStorage cut(common::PosixStorage(), step);
      ::_exit(TakeSnapshot(cut, Path("work"), "s1") ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    ASSERT_TRUE(code == 0 || code == testing_support::kCrashExitCode) << "step " << step;
    auto config = engine::LoadCloneConfig(storage_, Path("work"));
    ASSERT_TRUE(config) << "step " << step << ": " << config.error().message();
    const bool taken = config.value().FindSnapshot("s1") != nullptr;
    if (!taken) {
      EXPECT_EQ(ReadText(Path("work/.clonefs/clone.json")), old_config);
    }
    EXPECT_EQ(Contents(Path("work")), before) << "step " << step;
    // The next change starts by removing what the cut left behind.
    {
      auto vm = LockVm(storage_, Path("work"), "test");
      ASSERT_TRUE(vm) << vm.error().message();
    }
    size_t layer_files = 0;
    for (const auto& e : fs::directory_iterator(Path("work/.clonefs"))) {
      const std::string ext = e.path().extension();
      layer_files += ext == ".delta" || ext == ".map" || ext == ".sums";
    }
    EXPECT_EQ(layer_files, taken ? 5u : 2u) << "step " << step;
    if (code == 0) break;
    ++crashes;
  }
  EXPECT_GE(crashes, 10);  // the snapshot really was cut at many steps
}

}  // namespace
}  // namespace tools
