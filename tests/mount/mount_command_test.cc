// SPDX-License-Identifier: Apache-2.0
// Mounting the usual way (docs/daemon.md, "Mounting with mount(8) and fstab"): mount(8)
// with type fuse.clonefs, fstab lines (in an fstab file of the test's own, given to
// `mount --fstab`, so /etc/fstab is never touched), and umount(8).
//
// mount(8) runs /sbin/mount.fuse3, which runs `sh -c 'clonefs VM MNT -o ...'` in an
// environment mount(8) cleared of PATH, so sh looks clonefs up in its built-in default
// path, which starts with /usr/local/sbin; the caller's PATH plays no part. For the clonefs
// under test to be found there without installing anything, each test moves its process
// into a private mount namespace and bind-mounts a directory holding one symlink,
// `clonefs` -> the binary under test, over /usr/local/sbin. The daemons mount.fuse3 starts
// join that namespace: nothing these tests mount is visible outside it, and each mount is
// unmounted (and its daemon waited for) before the test ends, passed or failed.
#include <sched.h>
#include <sys/mount.h>

#include <cstring>

#include "tests/mount/host_mounts.h"
#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

// The first directory of dash's default PATH (mount.fuse3 runs /bin/sh, dash on Debian).
constexpr char kHelperSearchDir[] = "/usr/local/sbin";

// A clonefs mount made by mount(8) with `argv` (mount's command line) at `mountpoint`;
// umount(8) on destruction, then a wait for the daemon's final flush and exit. A daemon
// still running 20 s after its unmount is killed, so no process outlives the test.
class MountCommand {
 public:
  MountCommand(const std::vector<std::string>& argv, const std::string& clone_dir,
               std::string mountpoint)
      : mountpoint_(std::move(mountpoint)) {
    std::filesystem::create_directories(mountpoint_);
    result_ = Run(argv);
    // Whatever mount(8) said, what is mounted gets unmounted.
    mounted_ = IsMountpoint(mountpoint_);
    if (mounted_) pid_ = DaemonPid(clone_dir);
  }
  ~MountCommand() { Unmount(); }
  MountCommand(const MountCommand&) = delete;
  MountCommand& operator=(const MountCommand&) = delete;

  // mount(8) exited 0 and the mount is there.
  bool ok() const { return result_.exit_code == 0 && mounted_; }
  const CommandResult& result() const { return result_; }
  std::string operator/(const std::string& name) const { return mountpoint_ + "/" + name; }
  long pid() const { return pid_; }

  // umount MOUNTPOINT, then waits for the daemon to exit. False if either failed (the
  // mount is then detached lazily and the daemon killed).
  bool Unmount() {
    if (!mounted_) return true;
    mounted_ = false;
    bool unmounted = false;
    for (int attempt = 0; attempt < 50 && !unmounted; ++attempt) {
      unmounted = Run({"umount", mountpoint_}).exit_code == 0;
      if (!unmounted) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // EBUSY
    }
    if (!unmounted) Run({"umount", "-l", mountpoint_});
    const bool exited = WaitForExit(pid_);
    if (!exited) {
      kill(static_cast<pid_t>(pid_), SIGKILL);
      WaitForExit(pid_);
    }
    return unmounted && exited;
  }

 private:
  std::string mountpoint_;
  CommandResult result_;
  bool mounted_ = false;
  long pid_ = 0;
};

#define ASSERT_MOUNT_COMMAND_OK(m) \
  ASSERT_TRUE((m).ok()) << "mount exited " << (m).result().exit_code << ": " << (m).result().err

// `findmnt -n -o COLUMN MOUNTPOINT` without its newline ("" when nothing is mounted).
std::string FindmntColumn(const std::string& mountpoint, const std::string& column) {
  CommandResult r = Run({"findmnt", "-n", "-o", column, mountpoint});
  return r.out.substr(0, r.out.find('\n'));
}

// Whether a comma-separated option list holds `option`.
bool HasOption(const std::string& options, const std::string& option) {
  return ("," + options + ",").find("," + option + ",") != std::string::npos;
}

class MountCommandTest : public MountTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(unshare(CLONE_NEWNS), 0) << "unshare(CLONE_NEWNS): " << std::strerror(errno);
    // Nothing mounted from here on propagates back to the host's namespace.
    ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
        << "making / private: " << std::strerror(errno);
    const std::string helper_dir = Path("sbin");
    std::filesystem::create_directories(helper_dir);
    std::filesystem::create_symlink(ClonefsPath(), helper_dir + "/clonefs");
    ASSERT_EQ(mount(helper_dir.c_str(), kHelperSearchDir, nullptr, MS_BIND, nullptr), 0)
        << "bind-mounting " << helper_dir << " over " << kHelperSearchDir << ": "
        << std::strerror(errno);
    helper_bound_ = true;

    parent_ = MakeParent("base.vmdk", "16M", {"write -P 0x11 0 1M", "write -P 0x22 8M 64k"});
    clone_ = Clone(parent_, "c1");
  }

  void TearDown() override {
    if (helper_bound_) umount2(kHelperSearchDir, MNT_DETACH);
  }

  // mount -t fuse.clonefs [-o OPTIONS] CLONE MOUNTPOINT
  std::vector<std::string> MountArgv(const std::string& mountpoint,
                                     const std::string& options = "") const {
    std::vector<std::string> argv = {"mount", "-t", "fuse.clonefs"};
    if (!options.empty()) argv.insert(argv.end(), {"-o", options});
    argv.insert(argv.end(), {clone_, mountpoint});
    return argv;
  }

  // Writes an fstab file of `lines` and returns its path.
  std::string WriteFstab(const std::vector<std::string>& lines) {
    const std::string path = Path("fstab");
    std::ofstream out(path, std::ios::trunc);
    out << "# written by " << ::testing::UnitTest::GetInstance()->current_test_info()->name()
        << "\n";
    for (const std::string& line : lines) out << line << "\n";
    return path;
  }

  std::string parent_;
  std::string clone_;
  bool helper_bound_ = false;
};

TEST_F(MountCommandTest, MountTypeFuseClonefsServesTheCloneAndUmountFlushesItsWrites) {
  const std::string mountpoint = Path("m");
  const std::string written = PatternBytes(64 * 1024, 7);
  {
    MountCommand m(MountArgv(mountpoint), clone_, mountpoint);
    ASSERT_MOUNT_COMMAND_OK(m);
    EXPECT_EQ(m.result().err, "");
    EXPECT_GT(m.pid(), 0);
    EXPECT_EQ(FindmntColumn(mountpoint, "FSTYPE"), "fuse.clonefs");
    EXPECT_EQ(FindmntColumn(mountpoint, "SOURCE"), std::filesystem::canonical(clone_).string());
    // mount(8) returned once the mount was ready: qemu-img reads it at once.
    EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", parent_));

    // Written without fsync, then unmounted at once: only the unmount's flush saves it.
    const int fd = ::open((m / "base-flat.vmdk").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    EXPECT_EQ(::pwrite(fd, written.data(), written.size(), 4 << 20),
              static_cast<ssize_t>(written.size()));
    ::close(fd);
    EXPECT_TRUE(m.Unmount());
  }
  EXPECT_FALSE(IsMountpoint(mountpoint));
  const std::string log = ReadText(clone_ + "/.clonefs/daemon.log");
  EXPECT_EQ(CountOf(log, "every write flushed"), 1u) << log;

  MountCommand again(MountArgv(mountpoint), clone_, mountpoint);
  ASSERT_MOUNT_COMMAND_OK(again);
  EXPECT_EQ(ReadRange(again / "base-flat.vmdk", 4 << 20, written.size()), written);
  EXPECT_TRUE(QemuIoUncached(again / "base.vmdk",
                             {"read -P 0x11 0 1M", "read -P 0x22 8M 64k", "read -P 0 5M 1M"}));
}

TEST_F(MountCommandTest, ReadOnlyMountTakesTheGenericOptionsAndRefusesWrites) {
  const std::string mountpoint = Path("m");
  MountCommand m(MountArgv(mountpoint, "ro,noatime,nodev,nosuid"), clone_, mountpoint);
  ASSERT_MOUNT_COMMAND_OK(m);
  const std::string vfs_options = FindmntColumn(mountpoint, "VFS-OPTIONS");
  EXPECT_TRUE(HasOption(vfs_options, "ro")) << vfs_options;
  EXPECT_TRUE(HasOption(vfs_options, "nosuid")) << vfs_options;
  EXPECT_TRUE(HasOption(vfs_options, "nodev")) << vfs_options;
  EXPECT_EQ(OpenErrno(m / "base-flat.vmdk", O_RDWR), EROFS);
  EXPECT_EQ(OpenErrno(m / "new-file", O_WRONLY | O_CREAT), EROFS);
  EXPECT_FALSE(QemuIo(m / "base.vmdk", {"write -P 0x33 0 4k"}));
  EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", parent_));
  EXPECT_TRUE(m.Unmount());
}

// mount.fuse3 adds dev,suid when it is not told nodev,nosuid: clonefs mounts nosuid,nodev
// anyway. noexec reaches the kernel.
TEST_F(MountCommandTest, DefaultMountIsNosuidNodevAndNoexecReachesTheKernel) {
  const std::string mountpoint = Path("m");
  {
    MountCommand m(MountArgv(mountpoint), clone_, mountpoint);
    ASSERT_MOUNT_COMMAND_OK(m);
    const std::string vfs_options = FindmntColumn(mountpoint, "VFS-OPTIONS");
    EXPECT_TRUE(HasOption(vfs_options, "rw")) << vfs_options;
    EXPECT_TRUE(HasOption(vfs_options, "nosuid")) << vfs_options;
    EXPECT_TRUE(HasOption(vfs_options, "nodev")) << vfs_options;
    EXPECT_FALSE(HasOption(vfs_options, "noexec")) << vfs_options;
    EXPECT_TRUE(m.Unmount());
  }
  MountCommand m(MountArgv(mountpoint, "noexec"), clone_, mountpoint);
  ASSERT_MOUNT_COMMAND_OK(m);
  EXPECT_TRUE(HasOption(FindmntColumn(mountpoint, "VFS-OPTIONS"), "noexec"));
  EXPECT_EQ(OpenErrno(m / "base-flat.vmdk", O_RDWR), 0);
  EXPECT_TRUE(m.Unmount());
}

// The fstab line an operator writes for a clone on network storage; `mount MOUNTPOINT`
// finds it, `mount -a` mounts it once and then knows it is mounted.
TEST_F(MountCommandTest, FstabLineMountsByMountpointAndMountAllSeesItMounted) {
  const std::string mountpoint = Path("m");
  const std::string fstab =
      WriteFstab({clone_ + " " + mountpoint + " fuse.clonefs defaults,_netdev,nofail," +
                  "x-systemd.requires-mounts-for=" + dir_.path() + " 0 0"});
  MountCommand m({"mount", "--fstab", fstab, mountpoint}, clone_, mountpoint);
  ASSERT_MOUNT_COMMAND_OK(m);
  EXPECT_EQ(FindmntColumn(mountpoint, "FSTYPE"), "fuse.clonefs");
  EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", parent_));
  EXPECT_TRUE(QemuIo(m / "base.vmdk", {"write -P 0x44 12M 64k"}));

  CommandResult all = testing_support::Run({"mount", "--fstab", fstab, "--all", "--verbose"});
  EXPECT_EQ(all.exit_code, 0) << all.out << all.err;
  EXPECT_NE(all.out.find("already mounted"), std::string::npos) << all.out << all.err;
  EXPECT_EQ(MountsAt(mountpoint), 1) << "mount --all stacked a second mount";
  EXPECT_TRUE(m.Unmount());

  // umount flushed: mounted again from the same line, the write is there.
  MountCommand again({"mount", "--fstab", fstab, mountpoint}, clone_, mountpoint);
  ASSERT_MOUNT_COMMAND_OK(again);
  EXPECT_TRUE(QemuIoUncached(again / "base.vmdk", {"read -P 0x44 12M 64k", "read -P 0x11 0 1M"}));
}

TEST_F(MountCommandTest, NoautoFstabLineIsLeftByMountAllAndMountsByName) {
  const std::string mountpoint = Path("m");
  const std::string fstab = WriteFstab({clone_ + " " + mountpoint + " fuse.clonefs noauto,ro 0 0"});
  {
    MountCommand all({"mount", "--fstab", fstab, "--all"}, clone_, mountpoint);
    EXPECT_EQ(all.result().exit_code, 0) << all.result().err;
    EXPECT_FALSE(IsMountpoint(mountpoint)) << "mount --all mounted a noauto line";
  }
  MountCommand m({"mount", "--fstab", fstab, mountpoint}, clone_, mountpoint);
  ASSERT_MOUNT_COMMAND_OK(m);
  EXPECT_TRUE(HasOption(FindmntColumn(mountpoint, "VFS-OPTIONS"), "ro"));
  EXPECT_EQ(OpenErrno(m / "base-flat.vmdk", O_RDWR), EROFS);
  EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", parent_));
  EXPECT_TRUE(m.Unmount());
}

// mount(8) passes on the helper's exit status, and clonefs's one line is all it prints.
TEST_F(MountCommandTest, FailingMountExitsNonZeroWithClonefsOneLineError) {
  const std::string mountpoint = Path("m");
  std::filesystem::rename(parent_, Path("elsewhere.vmdk"));
  {
    MountCommand m(MountArgv(mountpoint), clone_, mountpoint);
    EXPECT_TRUE(IsOneLineRefusal(m.result(), parent_ + ": ")) << "missing parent";
    EXPECT_TRUE(IsOneLineRefusal(m.result(), "missing"));
    EXPECT_FALSE(IsMountpoint(mountpoint));
  }
  std::filesystem::rename(Path("elsewhere.vmdk"), parent_);
  {
    MountCommand m(MountArgv(mountpoint, "ro,bogus"), clone_, mountpoint);
    EXPECT_TRUE(IsOneLineRefusal(m.result(), "-o bogus: unknown option"));
    EXPECT_FALSE(IsMountpoint(mountpoint));
  }
  {
    const std::string missing = Path("no-such-dir");
    CommandResult r = testing_support::Run(MountArgv(missing));
    if (IsMountpoint(missing)) testing_support::Run({"umount", "-l", missing});
    EXPECT_TRUE(IsOneLineRefusal(r, missing + ": No such file or directory"));
  }
  // Nothing was left locked or mounted: the same mount now works.
  MountCommand m(MountArgv(mountpoint), clone_, mountpoint);
  ASSERT_MOUNT_COMMAND_OK(m);
  EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", parent_));
}

TEST_F(MountCommandTest, RemountIsRefusedAndTheMountKeepsServing) {
  const std::string mountpoint = Path("m");
  MountCommand m(MountArgv(mountpoint), clone_, mountpoint);
  ASSERT_MOUNT_COMMAND_OK(m);
  CommandResult r = testing_support::Run({"mount", "-o", "remount,ro", mountpoint});
  EXPECT_TRUE(IsOneLineRefusal(r, "-o remount: a clonefs mount cannot be changed in place"));
  EXPECT_EQ(MountsAt(mountpoint), 1);
  EXPECT_TRUE(HasOption(FindmntColumn(mountpoint, "VFS-OPTIONS"), "rw"));
  EXPECT_EQ(OpenErrno(m / "base-flat.vmdk", O_RDWR), 0);
  EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", parent_));
  EXPECT_TRUE(m.Unmount());
}

}  // namespace
}  // namespace mount_test
