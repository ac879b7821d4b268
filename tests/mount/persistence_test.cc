// SPDX-License-Identifier: Apache-2.0
// What a clone holds outlives its mount: writes are there after fusermount3 -u and a new
// mount, and SIGTERM (as a service manager stops the daemon) flushes writes no fsync
// covered, shuts the delta layer down cleanly and logs the unmount.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using integration::ReadText;

class PersistenceTest : public MountTest {
 protected:
  // Bit 0 of the flags at byte 96 of the map header (docs/delta-format.md).
  static bool CleanShutdownFlag(const std::string& map_path) {
    const std::string header = ReadText(map_path);
    return header.size() >= 100 && (static_cast<unsigned char>(header[96]) & 1) != 0;
  }
};

TEST_F(PersistenceTest, WritesAreThereAfterUnmountAndRemount) {
  const std::string clone = Clone(MakeParent("base.vmdk", "16M", {"write -P 0x11 0 1M"}), "c1");
  {
    MountedClone m(clone, Path("m"));
    ASSERT_MOUNTED(m);
    ASSERT_TRUE(QemuIo(m / "base.vmdk", {"write -P 0x33 1000 10000", "write -P 0x44 8M 64k",
                                         "write -P 0x55 16776704 512"}));
    ASSERT_TRUE(m.Unmount());
  }
  EXPECT_NE(ReadText(clone + "/.clonefs/daemon.log").find("unmounted"), std::string::npos);
  EXPECT_TRUE(CleanShutdownFlag(clone + "/.clonefs/base.map"));

  MountedClone again(clone, Path("m"));
  ASSERT_MOUNTED(again);
  EXPECT_TRUE(QemuIoUncached(
      again / "base.vmdk",
      {"read -P 0x11 0 1000", "read -P 0x33 1000 10000", "read -P 0x11 11000 1037576",
       "read -P 0x44 8M 64k", "read -P 0 8454144 8322560", "read -P 0x55 16776704 512"}));
}

// The write below is acknowledged but covered by no fsync (close does not flush a
// presented disk), and the daemon is stopped long before its periodic flush is due: only
// the flush on SIGTERM can make it reach the persisted bitmap.
TEST_F(PersistenceTest, SigtermFlushesUnsyncedWritesAndLogsTheUnmount) {
  const std::string clone = Clone(MakeParent("base.vmdk", "16M", {"write -P 0x11 0 1M"}), "c1");
  const std::string pattern(65536 + 1000, '\x5a');
  const off_t offset = (1 << 20) - 500;  // unaligned, across parent data and a hole
  {
    MountedClone m(clone, Path("m"));
    ASSERT_MOUNTED(m);
    const std::string flat = m / "base-flat.vmdk";
    int fd = open(flat.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << flat << ": " << std::strerror(errno);
    const ssize_t written = pwrite(fd, pattern.data(), pattern.size(), offset);
    const int write_errno = errno;
    close(fd);
    ASSERT_EQ(written, static_cast<ssize_t>(pattern.size())) << std::strerror(write_errno);
    ASSERT_TRUE(m.Terminate()) << "the daemon did not exit on SIGTERM";
    EXPECT_FALSE(IsMountpoint(Path("m"))) << "SIGTERM left the mount behind";
  }
  const std::string log = ReadText(clone + "/.clonefs/daemon.log");
  EXPECT_NE(log.find("unmounted"), std::string::npos) << log;
  EXPECT_EQ(log.find("flush failed"), std::string::npos) << log;
  EXPECT_TRUE(CleanShutdownFlag(clone + "/.clonefs/base.map"));

  MountedClone again(clone, Path("m"));
  ASSERT_MOUNTED(again);
  EXPECT_TRUE(QemuIoUncached(
      again / "base.vmdk",
      {"read -P 0x11 0 1048076", "read -P 0x5a 1048076 66536", "read -P 0 1114612 1M"}));
  EXPECT_EQ(ReadText(clone + "/.clonefs/daemon.log").find("not shut down cleanly"),
            std::string::npos);
}

}  // namespace
}  // namespace mount_test
