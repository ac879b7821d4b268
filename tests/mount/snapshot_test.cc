// SPDX-License-Identifier: Apache-2.0
// Snapshot points and clones of them, through real mounts: a snapshot point keeps the
// state it froze while the VM goes on writing; a clone of it reads exactly that state
// (qemu-img compare against a raw image that had the same writes); clones of clones
// stack to any depth; a running VM's snapshot points can be cloned; and every refusal
// is one line, a non-zero exit, and changes nothing.
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

constexpr const char* kSize = "32M";

class SnapshotTest : public MountTest {
 protected:
  // A parent holding data, and a raw image with the same contents to compare with.
  void SetUp() override {
    parent_ = MakeParent("golden.vmdk", kSize, {"write -P 0x11 0 32M"});
    expected_ = Path("expected.raw");
    ASSERT_TRUE(RunsOk({"qemu-img", "convert", "-O", "raw", parent_, expected_}));
  }

  // Writes `commands` through a mount of `vm` and into the raw image `raw` alike.
  void WriteBoth(const std::string& vm, const std::string& raw,
                 const std::vector<std::string>& commands) {
    {
      MountedClone m(vm, Path("mnt-" + std::filesystem::path(vm).filename().string()));
      ASSERT_MOUNTED(m);
      ASSERT_TRUE(QemuIo(m / "golden.vmdk", commands));
    }
    std::vector<std::string> argv = {"qemu-io", "-f", "raw"};
    for (const auto& c : commands) argv.insert(argv.end(), {"-c", c});
    argv.push_back(raw);
    ASSERT_TRUE(RunsOk(argv));
  }

  // Mounts `vm` read-only and compares its disk with `raw`.
  ::testing::AssertionResult ReadsAs(const std::string& vm, const std::string& raw) {
    MountedClone m(vm, Path("check-" + std::filesystem::path(vm).filename().string()),
                   {"-o", "ro"});
    if (!m.ok()) return ::testing::AssertionFailure() << "mount failed: " << m.result().err;
    return QemuImgCompare(m / "golden.vmdk", raw, {"-f", "vmdk", "-F", "raw"});
  }

  std::string CopyOf(const std::string& raw, const std::string& name) {
    const std::string copy = Path(name);
    std::filesystem::copy_file(raw, copy);
    return copy;
  }

  void Snapshot(const std::string& vm, const std::string& name) {
    auto r = Clonectl({"snapshot", vm, name});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string CloneOf(const std::string& vm, const std::string& name,
                      const std::string& snapshot) {
    std::vector<std::string> args = {"clone", vm, Path(name), "--linked"};
    if (!snapshot.empty()) args.insert(args.end(), {"--snapshot", snapshot});
    auto r = Clonectl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Path(name);
  }

  std::string parent_;
  std::string expected_;
};

TEST_F(SnapshotTest, ASnapshotPointKeepsItsStateWhileTheVmGoesOn) {
  const std::string vm = Clone(parent_, "vm");
  WriteBoth(vm, expected_, {"write -P 0x22 1M 1M", "write -P 0x23 5000 3000"});
  const std::string at_s1 = CopyOf(expected_, "s1.raw");
  const std::string s1_state = CopyOf(expected_, "s1-state.raw");
  Snapshot(vm, "s1");
  WriteBoth(vm, expected_, {"write -P 0x33 1536k 1M", "write -P 0x34 7000 100"});

  const std::string c1 = CloneOf(vm, "c1", "s1");
  EXPECT_TRUE(ReadsAs(c1, at_s1));
  EXPECT_TRUE(ReadsAs(vm, expected_));
  // The clone writes its own top layer only.
  WriteBoth(c1, at_s1, {"write -P 0x44 0 64k"});
  EXPECT_TRUE(ReadsAs(c1, at_s1));
  EXPECT_TRUE(ReadsAs(vm, expected_));
  const std::string c2 = CloneOf(vm, "c2", "s1");
  EXPECT_TRUE(ReadsAs(c2, s1_state));  // not c1's writes: each clone has its own top
  EXPECT_TRUE(QemuIo(parent_, {"read -P 0x11 0 32M"}));  // the golden parent is untouched
}

TEST_F(SnapshotTest, ClonesOfClonesStackEightDeepAndEachReadsItsOwnState) {
  std::string vm = Clone(parent_, "gen0");
  for (int depth = 1; depth <= 8; ++depth) {
    const std::string offset = std::to_string(depth * 3) + "M";
    WriteBoth(vm, expected_, {fmt::format("write -P {} {} 1M", 0x40 + depth, offset),
                              fmt::format("write -P {} {} 512", 0x80 + depth, depth * 4096 + 512)});
    // No --snapshot: a linked clone of a managed VM takes snapshot point for-genN first.
    vm = CloneOf(vm, "gen" + std::to_string(depth), "");
    ASSERT_TRUE(ReadsAs(vm, expected_)) << "depth " << depth;
  }
  auto info = Clonectl({"snapshots", Path("gen7"), "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto list = integration::ParseJson(info.out);
  ASSERT_EQ(list["snapshots"].size(), 1u) << info.out;
  EXPECT_EQ(list["snapshots"][0]["name"], "for-gen8");
  EXPECT_EQ(list["snapshots"][0]["dependents"][0]["path"], Path("gen8"));
  EXPECT_EQ(list["snapshots"][0]["size_bytes"], (1 << 20) + 4096);
  EXPECT_TRUE(list["snapshots"][0]["current"].get<bool>());
}

TEST_F(SnapshotTest, ARunningVmsSnapshotPointCanBeCloned) {
  const std::string vm = Clone(parent_, "vm");
  WriteBoth(vm, expected_, {"write -P 0x22 2M 1M"});
  Snapshot(vm, "s1");
  MountedClone running(vm, Path("running"));
  ASSERT_MOUNTED(running);
  ASSERT_TRUE(QemuIo(running / "golden.vmdk", {"write -P 0x99 2M 1M"}));
  const std::string c1 = CloneOf(vm, "c1", "s1");
  EXPECT_TRUE(ReadsAs(c1, expected_));
  EXPECT_TRUE(QemuIo(running / "golden.vmdk", {"read -P 0x99 2M 1M"}));
}

TEST_F(SnapshotTest, RefusalsAreOneLineAndChangeNothing) {
  const std::string vm = Clone(parent_, "vm");
  Snapshot(vm, "s1");
  const std::string config_before = ReadText(vm + "/.clonefs/clone.json");
  auto listing = [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::recursive_directory_iterator(vm + "/.clonefs")) {
      // The mount below logs; that is not a change of the VM.
      if (e.path().filename() != "daemon.log") names.push_back(e.path().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  const auto files_before = listing();

  EXPECT_TRUE(integration::IsOneLineError(Clonectl({"snapshot", vm, "s1"}),
                                          "snapshot point 's1' already exists"));
  EXPECT_TRUE(integration::IsOneLineError(Clonectl({"snapshot", vm, "a/b"}), "holds '/'"));
  EXPECT_TRUE(integration::IsOneLineError(Clonectl({"snapshot", vm, ""}), "cannot be empty"));
  EXPECT_TRUE(integration::IsOneLineError(
      Clonectl({"clone", vm, Path("c9"), "--snapshot", "nope"}),
      "no snapshot point 'nope' (snapshot points: s1)"));
  EXPECT_FALSE(std::filesystem::exists(Path("c9")));
  EXPECT_TRUE(integration::IsOneLineError(Clonectl({"snapshots", Path("nothing")}),
                                          "not managed by clonefs"));
  EXPECT_TRUE(integration::IsOneLineError(
      Clonectl({"clone", parent_, Path("c8"), "--snapshot", "s1"}), "has no snapshot points"));
  {
    MountedClone running(vm, Path("running"));
    ASSERT_MOUNTED(running);
    EXPECT_TRUE(integration::IsOneLineError(Clonectl({"snapshot", vm, "s2"}),
                                            "VM is running (mounted at " + Path("running")));
    EXPECT_TRUE(integration::IsOneLineError(
        Clonectl({"clone", vm, Path("c7")}),
        "VM is running (mounted at " + Path("running") +
            ", pid " + std::to_string(running.pid()) +
            "); name a snapshot point with --snapshot to clone a running VM"));
    EXPECT_FALSE(std::filesystem::exists(Path("c7")));
  }
  EXPECT_EQ(ReadText(vm + "/.clonefs/clone.json"), config_before);
  EXPECT_EQ(listing(), files_before);
}

TEST_F(SnapshotTest, AMissingOrRewrittenSnapshotLayerRefusesTheMountNamingIt) {
  const std::string vm = Clone(parent_, "vm");
  WriteBoth(vm, expected_, {"write -P 0x22 2M 1M"});
  Snapshot(vm, "s1");
  const std::string c1 = CloneOf(vm, "c1", "s1");
  auto config = integration::ParseJson(ReadText(c1 + "/.clonefs/clone.json"));
  const std::string map = config["disks"][0]["inherited"][0]["map_file"];
  const std::string moved = map + ".moved";
  std::filesystem::rename(map, moved);
  {
    MountedClone m(c1, Path("m1"));
    EXPECT_FALSE(m.ok());
    EXPECT_TRUE(IsOneLineRefusal(m.result(), map + ": a snapshot layer of the chain is missing"));
  }
  std::filesystem::rename(moved, map);
  {
    MountedClone m(c1, Path("m2"));
    ASSERT_MOUNTED(m);
  }
}

TEST_F(SnapshotTest, RevertAndDeleteThroughTheCommandLine) {
  // A VM directory source, so the .vmx and nvram are part of each snapshot point.
  const std::string golden_dir = Path("golden-vm");
  std::filesystem::create_directories(golden_dir);
  std::filesystem::rename(parent_, golden_dir + "/golden.vmdk");
  testing_support::WriteFileBytes(golden_dir + "/nvram.bin", {std::byte{1}, std::byte{2}});
  const std::string vmx_text = "displayName = \"golden\"\nscsi0.present = \"TRUE\"\n"
                               "scsi0:0.fileName = \"golden.vmdk\"\nnvram = \"nvram.bin\"\n";
  std::ofstream(golden_dir + "/golden.vmx") << vmx_text;
  const std::string vm = Clone(golden_dir, "vm");
  WriteBoth(vm, expected_, {"write -P 0x22 1M 1M"});
  const std::string at_s1 = CopyOf(expected_, "s1.raw");
  Snapshot(vm, "s1");
  const std::string vmx_at_s1 = ReadText(vm + "/vm.vmx");
  std::ofstream(vm + "/vm.vmx", std::ios::app) << "guestinfo.changed = \"yes\"\n";
  testing_support::WriteFileBytes(vm + "/vm.nvram", {std::byte{9}});
  WriteBoth(vm, expected_, {"write -P 0x33 1536k 1M"});

  auto r = Clonectl({"revert", vm, "s1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ReadsAs(vm, at_s1));
  EXPECT_EQ(ReadText(vm + "/vm.vmx"), vmx_at_s1);
  EXPECT_EQ(testing_support::ReadFileBytes(vm + "/vm.nvram"),
            (std::vector<std::byte>{std::byte{1}, std::byte{2}}));

  // A clone of s1 keeps s1 from being deleted, and the VM too, until it is gone.
  const std::string c1 = CloneOf(vm, "c1", "s1");
  EXPECT_TRUE(integration::IsOneLineError(
      Clonectl({"delete", vm, "--snapshot", "s1"}),
      "snapshot point 's1' has dependent clones: " + c1 + " (snapshot point 's1')"));
  EXPECT_TRUE(integration::IsOneLineError(Clonectl({"delete", vm}),
                                          "the VM has dependent clones: " + c1));
  // Moved without clonectl: still refused, now saying so, until the record is forgotten.
  std::filesystem::rename(c1, Path("c1-moved"));
  EXPECT_TRUE(integration::IsOneLineError(Clonectl({"delete", vm, "--snapshot", "s1"}),
                                          "missing: moved or deleted without clonectl"));
  r = Clonectl({"delete", vm, "--snapshot", "s1", "--forget-missing"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ReadsAs(vm, at_s1));  // merged into the top: reads unchanged
  {
    MountedClone running(vm, Path("running"));
    ASSERT_MOUNTED(running);
    EXPECT_TRUE(integration::IsOneLineError(Clonectl({"delete", vm}), "VM is running"));
    EXPECT_TRUE(integration::IsOneLineError(Clonectl({"revert", vm, "s1"}), "VM is running"));
  }
  r = Clonectl({"delete", vm});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(vm));
}

TEST_F(SnapshotTest, TheFirstSnapshotOfAnUnmanagedVmAdoptsIt) {
  const std::string dir = Path("golden-vm");
  std::filesystem::create_directories(dir + "/data");
  std::filesystem::rename(parent_, dir + "/golden.vmdk");
  MakeParent("golden-vm/data/extra.vmdk", "8M", {"write -P 0x66 0 8M"});
  const std::string vmx_text =
      "displayName = \"golden\"\nscsi0.present = \"TRUE\"\n"
      "scsi0:0.fileName = \"golden.vmdk\"\nscsi0:1.fileName = \"data/extra.vmdk\"\n";
  std::ofstream(dir + "/golden.vmx") << vmx_text;
  const std::string base_sha = testing_support::Sha256OfFile(dir + "/golden.vmdk");

  auto r = Clonectl({"snapshot", dir, "installed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The disk outside the directory's top level now points at the presented descriptor.
  const std::string vmx_now = ReadText(dir + "/golden.vmx");
  EXPECT_NE(vmx_now.find("scsi0:1.fileName = \"extra.vmdk\""), std::string::npos) << vmx_now;
  EXPECT_NE(vmx_now.find("scsi0:0.fileName = \"golden.vmdk\""), std::string::npos) << vmx_now;
  {
    MountedClone m(dir, Path("mnt"));
    ASSERT_MOUNTED(m);
    // The presented golden.vmdk replaces the base file of the same name.
    EXPECT_TRUE(QemuImgCompare(m / "golden.vmdk", expected_, {"-f", "vmdk", "-F", "raw"}));
    EXPECT_TRUE(QemuIo(m / "extra.vmdk", {"read -P 0x66 0 8M"}));
    ASSERT_TRUE(QemuIo(m / "golden.vmdk", {"write -P 0x77 0 1M"}));
  }
  EXPECT_EQ(testing_support::Sha256OfFile(dir + "/golden.vmdk"), base_sha);  // read-only base
  const std::string c1 = CloneOf(dir, "c1", "installed");
  EXPECT_TRUE(ReadsAs(c1, expected_));
  auto list = integration::ParseJson(Clonectl({"snapshots", dir, "--json"}).out);
  ASSERT_EQ(list["snapshots"].size(), 1u);
  EXPECT_EQ(list["snapshots"][0]["name"], "installed");
  EXPECT_EQ(list["snapshots"][0]["dependents"][0]["path"], c1);
  // A plain VMDK cannot be adopted.
  EXPECT_TRUE(integration::IsOneLineError(Clonectl({"snapshot", dir + "/data/extra.vmdk", "x"}),
                                          "a plain .vmdk has no snapshot points"));
}

// kill -9 of clonectl while it checksums a 28 MiB layer, at several moments: the VM
// mounts and reads as before each time, and the snapshot can then be taken.
TEST_F(SnapshotTest, KillNineDuringASnapshotLeavesAWorkingVm) {
  const std::string vm = Clone(parent_, "vm");
  WriteBoth(vm, expected_, {"write -P 0x5a 4M 28M"});
  for (int delay_ms : {0, 5, 20, 60, 150}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::execl(testing_support::ClonectlPath().c_str(), "clonectl", "snapshot", vm.c_str(), "s1",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(ReadsAs(vm, expected_)) << "killed after " << delay_ms << " ms";
    auto list = integration::ParseJson(Clonectl({"snapshots", vm, "--json"}).out);
    if (!list["snapshots"].empty()) {  // it finished before the kill: start again
      ASSERT_EQ(Clonectl({"delete", vm, "--snapshot", "s1"}).exit_code, 0);
    }
  }
  auto r = Clonectl({"snapshot", vm, "s1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ReadsAs(CloneOf(vm, "c1", "s1"), expected_));
}

TEST_F(SnapshotTest, AFullCloneOfASnapshotPointWorksWhileTheVmRuns) {
  const std::string vm = Clone(parent_, "vm");
  WriteBoth(vm, expected_, {"write -P 0x22 2M 1M", "write -P 0x23 9000 100"});
  Snapshot(vm, "s1");
  MountedClone running(vm, Path("running"));
  ASSERT_MOUNTED(running);
  ASSERT_TRUE(QemuIo(running / "golden.vmdk", {"write -P 0x99 2M 1M"}));
  // The current state of a running VM cannot be copied consistently: refused.
  EXPECT_TRUE(integration::IsOneLineError(Clonectl({"clone", vm, Path("full0"), "--full"}),
                                          "VM is running (mounted at " + Path("running")));
  EXPECT_FALSE(std::filesystem::exists(Path("full0")));
  auto r = Clonectl({"clone", vm, Path("full1"), "--full", "--snapshot", "s1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string copy = Path("full1/golden.vmdk");
  EXPECT_TRUE(RunsOk({"qemu-img", "check", "-f", "vmdk", copy}));
  EXPECT_TRUE(QemuImgCompare(copy, expected_, {"-f", "vmdk", "-F", "raw"}));
  auto info = integration::ParseJson(testing_support::Run({"qemu-img", "info", "--output=json", copy}).out);
  EXPECT_EQ(info["format-specific"]["data"]["create-type"], "monolithicSparse");
  EXPECT_FALSE(std::filesystem::exists(Path("full1/.clonefs")));
  EXPECT_TRUE(integration::IsOneLineError(
      Clonectl({"clone", vm, Path("full2"), "--full", "--snapshot", "nope"}),
      "no snapshot point 'nope' (snapshot points: s1)"));
}

}  // namespace
}  // namespace mount_test
