// SPDX-License-Identifier: Apache-2.0
// kill -9 of the daemon: the clone mounts again (its unclean layer recovered, with a
// warning in daemon.log), every fsync'd write is intact, and every block written without
// fsync reads either its old or its new contents, never anything else.
#include "tests/mount/host_mounts.h"

namespace mount_test {
namespace {

using integration::WriteText;

constexpr uint64_t kMiB = 1 << 20;

// dd of `data` (a file in the test's directory) into `flat` at `offset_bytes`, in 64 KiB
// writes; `fsync` adds conv=fsync (an fsync before dd exits).
::testing::AssertionResult Dd(const std::string& data, const std::string& flat,
                              uint64_t offset_bytes, bool fsync) {
  return RunsOk({"dd", "if=" + data, "of=" + flat, "bs=64k", "oflag=seek_bytes",
                 "seek=" + std::to_string(offset_bytes),
                 fsync ? "conv=notrunc,fsync" : "conv=notrunc", "status=none"});
}

using CrashRecoveryTest = MountTest;

TEST_F(CrashRecoveryTest, FsyncedWritesSurviveKillNineAndUnsyncedBlocksReadOldOrNew) {
  const std::string parent = MakeParent("base.vmdk", "64M", {"write -P 0x11 0 16M"});
  const std::string parent_sha = testing_support::Sha256OfFile(parent);
  const std::string clone = Clone(parent, "c1");
  const std::string old_bytes(kMiB, '\x11');
  const std::string synced = PatternBytes(kMiB, 10);
  const std::string unsynced = PatternBytes(kMiB, 11);
  const std::string overwrite = PatternBytes(256 << 10, 12);
  WriteText(Path("synced.bin"), synced);
  WriteText(Path("unsynced.bin"), unsynced);
  WriteText(Path("overwrite.bin"), overwrite);
  {
    MountedClone m(clone, Path("m1"));
    ASSERT_MOUNTED(m);
    const std::string flat = m / "base-flat.vmdk";
    // Flushed by qemu-io, unaligned ones included (copy-on-write of partial blocks).
    ASSERT_TRUE(
        QemuIo(m / "base.vmdk", {"write -P 0xaa 0 1M", "write -P 0xab 1234567 100000", "flush"}));
    ASSERT_TRUE(Dd(Path("synced.bin"), flat, 4 * kMiB, /*fsync=*/true));
    // Never fsync'd: new blocks over the parent's data, and blocks the clone already owns.
    ASSERT_TRUE(Dd(Path("unsynced.bin"), flat, 8 * kMiB, /*fsync=*/false));
    ASSERT_TRUE(Dd(Path("overwrite.bin"), flat, 4 * kMiB + 512 * 1024, /*fsync=*/false));
    m.Kill();
    EXPECT_FALSE(ProcessAlive(m.pid()));
  }
  EXPECT_EQ(testing_support::Sha256OfFile(parent), parent_sha);

  MountedClone again(clone, Path("m1"));
  ASSERT_MOUNTED(again);
  const std::string log = ReadText(clone + "/.clonefs/daemon.log");
  EXPECT_EQ(CountOf(log, "not shut down cleanly"), 1u) << log;
  const std::string flat = again / "base-flat.vmdk";
  EXPECT_TRUE(
      QemuIo(again / "base.vmdk", {"read -P 0xaa 0 1M", "read -P 0x11 1M 185991",
                                   "read -P 0xab 1234567 100000", "read -P 0x11 1334567 762585"}));
  std::string synced_now = ReadRange(flat, 4 * kMiB, kMiB);
  std::string synced_or_overwritten = synced;
  synced_or_overwritten.replace(512 * 1024, overwrite.size(), overwrite);
  EXPECT_TRUE(synced_now.compare(0, 512 * 1024, synced, 0, 512 * 1024) == 0) << "fsync'd data lost";
  EXPECT_TRUE(synced_now.compare(768 * 1024, 256 * 1024, synced, 768 * 1024, 256 * 1024) == 0)
      << "fsync'd data lost";
  EXPECT_TRUE(EachBlockIsOldOrNew(synced_now, synced, synced_or_overwritten));
  EXPECT_TRUE(EachBlockIsOldOrNew(ReadRange(flat, 8 * kMiB, kMiB), old_bytes, unsynced));
  // Blocks nobody wrote are still the parent's.
  EXPECT_TRUE(QemuIo(again / "base.vmdk", {"read -P 0x11 9M 7M", "read -P 0 16M 48M"}));

  // Whatever the recovered mount showed, it keeps after a clean unmount, without a warning.
  const std::string recovered = ReadRange(flat, 0, 16 * kMiB);
  ASSERT_TRUE(again.Unmount());
  MountedClone third(clone, Path("m1"));
  ASSERT_MOUNTED(third);
  EXPECT_EQ(CountOf(ReadText(clone + "/.clonefs/daemon.log"), "not shut down cleanly"), 1u);
  EXPECT_TRUE(ReadRange(third / "base-flat.vmdk", 0, 16 * kMiB) == recovered);
}

}  // namespace
}  // namespace mount_test
