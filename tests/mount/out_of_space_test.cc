// SPDX-License-Identifier: Apache-2.0
// A clone whose delta lives on a file system that fills up: the writer gets ENOSPC, the
// daemon carries on (flushes fail while the space is missing), what was fsync'd before
// is intact, clonectl info still answers, and once there is space again the clone
// flushes and unmounts cleanly.
#include "tests/mount/host_mounts.h"

namespace mount_test {
namespace {

using integration::WriteText;

constexpr uint64_t kMiB = 1 << 20;

// dd of `data` into `flat` at byte `offset`; extra dd operands in `flags`.
CommandResult Dd(const std::string& data, const std::string& flat, uint64_t offset_bytes,
                 const std::string& flags) {
  return Run({"dd", "if=" + data, "of=" + flat, "bs=64k", "seek=" + std::to_string(offset_bytes),
              "oflag=seek_bytes" + flags, "conv=notrunc", "status=none"});
}

using OutOfSpaceTest = MountTest;

TEST_F(OutOfSpaceTest, WriterGetsEnospcAndTheDaemonAndFsyncedDataSurvive) {
  // 1 GiB: the delta's allocation bitmap spans several pages, and the writes that fill
  // the file system mark blocks in pages that were never used before.
  const std::string parent = MakeParent("base.vmdk", "1G", {"write -P 0x11 0 4M"});
  KernelMount small("tmpfs", "tmpfs", Path("small"), "size=8m");
  ASSERT_KERNEL_MOUNTED(small);
  const std::string clone = small / "c1";
  CommandResult cloned = Clonectl({"clone", parent, clone, "--linked"});
  ASSERT_EQ(cloned.exit_code, 0) << cloned.err;
  const std::string first = PatternBytes(kMiB, 30);
  WriteText(Path("first.bin"), first);
  WriteText(Path("more.bin"), PatternBytes(16 * kMiB, 31));
  WriteText(Path("sector.bin"), std::string(512, '\x5e'));
  std::string expected = first;
  {
    MountedClone m(clone, Path("m1"));
    ASSERT_MOUNTED(m);
    const std::string flat = m / "base-flat.vmdk";
    ASSERT_TRUE(RunsOk({"dd", "if=" + Path("first.bin"), "of=" + flat, "bs=64k",
                        "conv=notrunc,fsync", "status=none"}));
    // 16 MiB into an 8 MiB file system, through the page cache and with O_DIRECT.
    for (auto [offset, flags] :
         {std::pair<uint64_t, std::string>{512 * kMiB, ""}, {768 * kMiB, ",direct"}}) {
      SCOPED_TRACE(offset);
      CommandResult r = Dd(Path("more.bin"), flat, offset, flags);
      EXPECT_NE(r.exit_code, 0);
      EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ASSERT_TRUE(ProcessAlive(m.pid())) << "the daemon died";
    }
    // A block the clone already owns needs no space: writing it still works. The fsync
    // after it may fail (the blocks that got in before ENOSPC cannot be recorded in a full
    // file system), but the daemon must answer it.
    CommandResult r =
        testing_support::Run({"dd", "if=" + Path("sector.bin"), "of=" + flat, "bs=512", "seek=1024",
                              "conv=notrunc,fsync", "status=none"});
    EXPECT_TRUE(r.exit_code == 0 || r.err.find("No space left on device") != std::string::npos)
        << r.err;
    ASSERT_TRUE(ProcessAlive(m.pid())) << "the daemon died";
    expected.replace(512 * 1024, 512, 512, '\x5e');
    EXPECT_TRUE(ReadRange(flat, 0, kMiB) == expected);
    CommandResult info = Clonectl({"info", clone});
    EXPECT_EQ(info.exit_code, 0) << info.err;
    // Unmounted while the file system is still full: the final flush may fail, but the
    // daemon exits and leaves nothing mounted.
    EXPECT_TRUE(m.Unmount());
    EXPECT_FALSE(IsMountpoint(Path("m1")));
    EXPECT_EQ(CountOf(ReadText(clone + "/.clonefs/daemon.log"), "unmounted"), 1u)
        << "the daemon did not get to the end of its unmount";
  }
  {
    // Mounted again on the full file system: whatever the last flush could not persist
    // is gone, what was fsync'd is there.
    MountedClone m(clone, Path("m1"));
    ASSERT_MOUNTED(m);
    const std::string flat = m / "base-flat.vmdk";
    const std::string head = ReadRange(flat, 0, kMiB);
    EXPECT_TRUE(head.compare(0, 512 * 1024, first, 0, 512 * 1024) == 0) << "fsync'd data lost";
    EXPECT_TRUE(head.compare(512 * 1024 + 512, std::string::npos, first, 512 * 1024 + 512) == 0)
        << "fsync'd data lost";
    EXPECT_TRUE(QemuIo(m / "base.vmdk", {"read -P 0x11 1M 3M", "read -P 0 4M 4M"}));
    // Each block the full file system took part of reads as before or as written.
    EXPECT_TRUE(EachBlockIsOldOrNew(ReadRange(flat, 512 * kMiB, 16 * kMiB),
                                    std::string(16 * kMiB, '\0'), ReadText(Path("more.bin"))));
    CommandResult info = Clonectl({"info", clone});
    EXPECT_EQ(info.exit_code, 0) << info.err;

    // Space again: writes and flushes succeed, and the clone unmounts cleanly.
    ASSERT_TRUE(RunsOk({"mount", "-o", "remount,size=64m", small.path()}));
    EXPECT_TRUE(QemuIo(m / "base.vmdk", {"write -P 0x6f 900M 1M", "flush"}));
    EXPECT_TRUE(m.Unmount());
  }
  const size_t warnings =
      CountOf(ReadText(clone + "/.clonefs/daemon.log"), "not shut down cleanly");
  MountedClone m(clone, Path("m1"));
  ASSERT_MOUNTED(m);
  EXPECT_EQ(CountOf(ReadText(clone + "/.clonefs/daemon.log"), "not shut down cleanly"), warnings);
  EXPECT_TRUE(QemuIo(m / "base.vmdk", {"read -P 0x6f 900M 1M", "read -P 0x11 1M 3M"}));
}

}  // namespace
}  // namespace mount_test
