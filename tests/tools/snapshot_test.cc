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
#include <functional>

#include "fs/engine/disk_chain.h"
#include "tests/support/crash_point_storage.h"
#include "tests/support/test_support.h"
#include "tools/lib/delete.h"
#include "tools/lib/dependents.h"
#include "tools/lib/linked_clone.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/revert.h"

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

  // Runs `change` on a copy of `vm` named "work" in a child process killed before its
  // 1st, 2nd, ... mutating operation until it completes; after each run `check(done)`
  // inspects "work". Returns how many runs were cut.
  int CutAtEveryStep(const std::string& vm, const std::function<bool(common::Storage&)>& change,
                     const std::function<void(bool done, long step)>& check) {
    int crashes = 0;
    for (long step = 1;; ++step) {
      fs::remove_all(Path("work"));
      fs::copy(vm, Path("work"), fs::copy_options::recursive);
      const pid_t child = ::fork();
      EXPECT_GE(child, 0);
      if (child == 0) {
        testing_support::CrashPointStorage cut(common::PosixStorage(), step);
        ::_exit(change(cut) ? 0 : 1);
      }
      int status = 0;
      EXPECT_EQ(::waitpid(child, &status, 0), child);
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      EXPECT_TRUE(code == 0 || code == testing_support::kCrashExitCode) << "step " << step;
      if (code != 0 && code != testing_support::kCrashExitCode) return crashes;
      check(code == 0, step);
      if (code == 0 || ::testing::Test::HasFatalFailure()) return crashes;
      ++crashes;
    }
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
      layer_files += ext == ".delta" || ext == ".packed" || ext == ".map" || ext == ".sums";
    }
    EXPECT_EQ(layer_files, taken ? 5u : 2u) << "step " << step;
    if (code == 0) break;
    ++crashes;
  }
  EXPECT_GE(crashes, 10);  // the snapshot really was cut at many steps
}

TEST_F(SnapshotLibTest, RevertGoesBackToTheSnapshotAndKeepsLaterOnesAsABranch) {
  Write(Path("vm"), 0, 2, 'a');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s1"));
  Write(Path("vm"), 1, 2, 'b');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s2"));
  Write(Path("vm"), 2, 2, 'c');
  auto reverted = RevertToSnapshot(storage_, Path("vm"), "s1");
  ASSERT_TRUE(reverted) << reverted.error().message();
  EXPECT_EQ(Contents(Path("vm")), Expected({{0, 2, 'a'}}));
  // The branch: write on, snapshot again; s2 still clones as it was.
  Write(Path("vm"), 5, 1, 'd');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s3"));
  ASSERT_TRUE(CreateLinkedClone(storage_, {Path("vm"), Path("c2"), "", "s2"}));
  EXPECT_EQ(Contents(Path("c2")), Expected({{0, 2, 'a'}, {1, 2, 'b'}}));
  EXPECT_EQ(Contents(Path("vm")), Expected({{0, 2, 'a'}, {5, 1, 'd'}}));
  // Only the current top and the frozen layers remain: the discarded top is gone.
  auto config = engine::LoadCloneConfig(storage_, Path("vm")).value();
  EXPECT_EQ(config.disks[0].frozen.size(), 3u);
  auto missing = RevertToSnapshot(storage_, Path("vm"), "nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("no snapshot point 'nope' (snapshot points: s1, s2, s3)"),
            std::string::npos);
}

TEST_F(SnapshotLibTest, DeletingASnapshotMergesItsLayerWithoutChangingAnyRead) {
  Write(Path("vm"), 0, 4, 'a');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s1"));
  Write(Path("vm"), 2, 4, 'b');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s2"));
  Write(Path("vm"), 5, 2, 'c');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s3"));
  Write(Path("vm"), 6, 3, 'd');
  const std::string now = Contents(Path("vm"));
  ASSERT_TRUE(CreateLinkedClone(storage_, {Path("vm"), Path("c3"), "", "s3"}));
  const std::string at_s3 = Contents(Path("c3"));

  // s1 and s2 lie under s3, which c3 is a clone of: refused, naming c3.
  common::Status refused = DeleteSnapshot(storage_, Path("vm"), "s2");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), EBUSY);
  EXPECT_NE(refused.message().find("snapshot point 's2' has dependent clones: " + Path("c3") +
                                   " (snapshot point 's3')"),
            std::string::npos)
      << refused.message();
  ASSERT_TRUE(DeleteVm(storage_, Path("c3")).ok());
  EXPECT_FALSE(fs::exists(Path("c3")));

  ASSERT_TRUE(DeleteSnapshot(storage_, Path("vm"), "s2").ok());
  EXPECT_EQ(Contents(Path("vm")), now);
  ASSERT_TRUE(CreateLinkedClone(storage_, {Path("vm"), Path("c3b"), "", "s3"}));
  EXPECT_EQ(Contents(Path("c3b")), at_s3);
  ASSERT_TRUE(DeleteVm(storage_, Path("c3b")).ok());
  // The last snapshot merges into the top layer.
  ASSERT_TRUE(DeleteSnapshot(storage_, Path("vm"), "s3").ok());
  ASSERT_TRUE(DeleteSnapshot(storage_, Path("vm"), "s1").ok());
  EXPECT_EQ(Contents(Path("vm")), now);
  auto config = engine::LoadCloneConfig(storage_, Path("vm")).value();
  EXPECT_TRUE(config.snapshots.empty());
  EXPECT_TRUE(config.disks[0].frozen.empty());
  EXPECT_EQ(config.disks[0].parent_layer_id, "");
  size_t layer_files = 0;
  for (const auto& e : fs::directory_iterator(Path("vm/.clonefs"))) {
    layer_files += e.path().extension() == ".delta" || e.path().extension() == ".map" ||
                   e.path().extension() == ".sums";
  }
  EXPECT_EQ(layer_files, 2u);
}

TEST_F(SnapshotLibTest, AKillAtAnyStepOfARevertLeavesTheOldOrTheNewState) {
  Write(Path("vm"), 0, 2, 'a');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s1"));
  Write(Path("vm"), 1, 3, 'b');
  const std::string before = Contents(Path("vm"));
  const std::string after = Expected({{0, 2, 'a'}});
  const int crashes = CutAtEveryStep(
      Path("vm"), [&](common::Storage& s) { return RevertToSnapshot(s, Path("work"), "s1").has_value(); },
      [&](bool, long step) {
        const std::string now = Contents(Path("work"));
        EXPECT_TRUE(now == before || now == after) << "step " << step;
      });
  EXPECT_GE(crashes, 5);
}

TEST_F(SnapshotLibTest, AKillAtAnyStepOfADeleteLeavesEveryReadAsItWas) {
  Write(Path("vm"), 0, 4, 'a');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s1"));
  Write(Path("vm"), 2, 4, 'b');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s2"));
  Write(Path("vm"), 3, 1, 'c');
  const std::string before = Contents(Path("vm"));
  const int crashes = CutAtEveryStep(
      Path("vm"), [&](common::Storage& s) { return DeleteSnapshot(s, Path("work"), "s1").ok(); },
      [&](bool done, long step) {
        EXPECT_EQ(Contents(Path("work")), before) << "step " << step;
        auto config = engine::LoadCloneConfig(storage_, Path("work"));
        ASSERT_TRUE(config) << config.error().message();
        EXPECT_EQ(config.value().FindSnapshot("s1") == nullptr, done || config.value().disks[0].frozen.size() == 1)
            << "step " << step;
        // s2 still clones as it was.
        fs::remove_all(Path("probe"));
        auto clone = CreateLinkedClone(storage_, {Path("work"), Path("probe"), "", "s2"});
        ASSERT_TRUE(clone) << "step " << step << ": " << clone.error().message();
        EXPECT_EQ(Contents(Path("probe")), Expected({{0, 4, 'a'}, {2, 4, 'b'}})) << "step " << step;
        ASSERT_TRUE(DeleteVm(storage_, Path("probe")).ok());
      });
  EXPECT_GE(crashes, 10);
}

// The fault-injecting storage: each mutating step of a snapshot, a revert and a delete
// fails once in turn (EIO). The change reports the failure, and the VM reads as before
// with its old configuration.
TEST_F(SnapshotLibTest, AFailedStepLeavesTheVmAsItWas) {
  using Mode = testing_support::CrashPointStorage::Mode;
  Write(Path("vm"), 0, 2, 'a');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s1"));
  Write(Path("vm"), 1, 2, 'b');
  ASSERT_TRUE(TakeSnapshot(storage_, Path("vm"), "s2"));
  Write(Path("vm"), 3, 1, 'c');
  const std::string before = Contents(Path("vm"));
  const std::string config_before = ReadText(Path("vm/.clonefs/clone.json"));
  const std::vector<std::pair<std::string, std::function<bool(common::Storage&)>>> changes = {
      {"snapshot", [&](common::Storage& s) { return TakeSnapshot(s, Path("work"), "s3").has_value(); }},
      {"revert", [&](common::Storage& s) { return RevertToSnapshot(s, Path("work"), "s1").has_value(); }},
      {"delete", [&](common::Storage& s) { return DeleteSnapshot(s, Path("work"), "s1").ok(); }},
  };
  for (const auto& [what, change] : changes) {
    int failures = 0;
    for (long step = 1;; ++step) {
      fs::remove_all(Path("work"));
      fs::copy(Path("vm"), Path("work"), fs::copy_options::recursive);
      testing_support::CrashPointStorage faulty(common::PosixStorage(), step, Mode::kFail);
      if (change(faulty)) break;
      ++failures;
      const std::string config_now = ReadText(Path("work/.clonefs/clone.json"));
      // A failure after the commit (removing leftovers) keeps the new state; before it,
      // the old one, byte for byte.
      if (config_now == config_before) {
        EXPECT_EQ(Contents(Path("work")), before) << what << " step " << step;
      }
      ASSERT_TRUE(LockVm(storage_, Path("work"), "test")) << what << " step " << step;
    }
    EXPECT_GE(failures, 5) << what;
  }
}

}  // namespace
}  // namespace tools
