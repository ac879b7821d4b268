// SPDX-License-Identifier: Apache-2.0
// clonectl verify, info and tree on a VM that is mounted and being written: verify only
// reads (no lock, the top layer read-only), so it runs beside the daemon, passes while
// the guest writes and flushes, and still names a block damaged under a running VM.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

class InspectMountedTest : public MountTest {
 protected:
  // vm: 64 KiB at 1 MiB written through a mount and frozen in snapshot point s1.
  void SetUp() override {
    parent_ = MakeParent("golden.vmdk", "32M", {"write -P 0x11 0 32M"});
    vm_ = Clone(parent_, "vm");
    {
      MountedClone m(vm_, Path("m0"));
      ASSERT_MOUNTED(m);
      ASSERT_TRUE(QemuIo(m / "golden.vmdk", {"write -P 0x22 1M 64k"}));
    }
    auto r = Clonectl({"snapshot", vm_, "s1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string FrozenDelta() {
    auto config = integration::ParseJson(ReadText(vm_ + "/.clonefs/clone.json"));
    return vm_ + "/.clonefs/" + config["disks"][0]["frozen"][0]["delta_file"].get<std::string>();
  }

  std::string parent_;
  std::string vm_;
};

TEST_F(InspectMountedTest, VerifyPassesWhileTheVmWritesAndFlushes) {
  MountedClone m(vm_, Path("running"));
  ASSERT_MOUNTED(m);
  // A guest writing and flushing all the while: the daemon rewrites the top layer's
  // header at every flush, and verify reads it meanwhile.
  std::vector<std::string> commands;
  for (int i = 0; i < 50; ++i) {
    commands.push_back(
        fmt::format("write -P {} {} 4k", 0x30 + i % 64, (4 + i % 16) * 1048576 + i * 4096));
    commands.push_back("flush");
  }
  bool writer_ok = false;
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    writer_ok = static_cast<bool>(QemuIo(m / "golden.vmdk", commands));
    writing = false;
  });
  int runs = 0;
  while (writing || runs < 3) {
    CommandResult r = Clonectl({"verify", vm_, runs % 2 ? "--full" : "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.err, "");
    ++runs;
  }
  writer.join();
  EXPECT_TRUE(writer_ok);

  CommandResult info = Clonectl({"info", vm_, "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto json = integration::ParseJson(info.out);
  EXPECT_TRUE(json["mounted"].get<bool>()) << info.out;
  EXPECT_EQ(json["mount"]["mountpoint"], Path("running"));
  EXPECT_EQ(json["mount"]["pid"], m.pid());
  EXPECT_EQ(json["disks"][0]["chain"][1]["owned_bytes"], 64 * 1024);
  CommandResult tree = Clonectl({"tree", vm_});
  ASSERT_EQ(tree.exit_code, 0) << tree.err;
  EXPECT_NE(tree.out.find("    └── (you are here)\n"), std::string::npos) << tree.out;
}

TEST_F(InspectMountedTest, VerifyNamesABlockDamagedUnderARunningVm) {
  MountedClone m(vm_, Path("running"));
  ASSERT_MOUNTED(m);
  const std::string delta = FrozenDelta();
  std::filesystem::permissions(delta, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  {
    std::fstream file(delta, std::ios::in | std::ios::out | std::ios::binary);
    // Block 259 is the frozen layer's fourth (it owns 256-271, packed side by side).
    file.seekp(4096 * 3 + 7);
    file.put('\x7f');
  }
  CommandResult plain = Clonectl({"verify", vm_});
  EXPECT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  CommandResult full = Clonectl({"verify", vm_, "--full"});
  EXPECT_EQ(full.exit_code, 1) << full.out << full.err;
  EXPECT_NE(full.out.find("FAILED  disk golden: bad block 259 (disk byte 1060864) at byte 12288 "
                          "of " + delta +
                          ": its data does not match its checksum\n"),
            std::string::npos)
      << full.out;
  EXPECT_NE(full.out.find(vm_ + ": 1 of 6 checks FAILED, 1 bad block"), std::string::npos)
      << full.out;
  EXPECT_TRUE(QemuIo(m / "golden.vmdk", {"write -P 0x33 0 4k", "flush"}));  // still serving
}

}  // namespace
}  // namespace mount_test
