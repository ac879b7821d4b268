// SPDX-License-Identifier: Apache-2.0
#pragma once

// Real FUSE mounts for the integration tests: a MountedClone runs the clonefs binary and
// unmounts in its destructor, waiting for the daemon to exit (so a test that fails
// half-way still leaves no mount and no process behind). MountTest gives each test a
// temporary directory with a qemu-img-made parent and helpers to clone and mount it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/mount_table.h"
#include "tests/integration/integration_util.h"
#include "tests/support/test_support.h"

namespace mount_test {

using integration::Clonectl;
using integration::QemuIo;
using integration::ReadText;
using testing_support::CommandResult;
using testing_support::Run;
using testing_support::RunShell;
using testing_support::RunsOk;
using testing_support::TempDir;

inline std::string ClonefsPath() { return CLONEFS_PATH; }

inline CommandResult Clonefs(std::vector<std::string> args) {
  args.insert(args.begin(), ClonefsPath());
  return Run(args);
}

// A zombie counts as exited: it has finished (the daemon's last flush is done), and
// whoever reaps it (init, in a container possibly seconds later) is not our concern.
inline bool ProcessAlive(long pid) {
  if (pid <= 0 || kill(static_cast<pid_t>(pid), 0) != 0) return false;
  const std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  const size_t end_of_name = stat.rfind(')');
  return end_of_name == std::string::npos || end_of_name + 2 >= stat.size() ||
         stat[end_of_name + 2] != 'Z';
}

// Waits up to `timeout` for a process (not our child) to exit.
inline bool WaitForExit(long pid, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ProcessAlive(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// The pid recorded by the daemon holding a clone's lock (0 if none).
inline long DaemonPid(const std::string& clone_dir) {
  auto json = nlohmann::json::parse(ReadText(clone_dir + "/.clonefs/lock.owner"), nullptr, false);
  return json.is_object() ? json.value("pid", 0L) : 0L;
}

// The pid of the clonefs daemon serving `mountpoint` (0 if none), found by its command line:
// for mounts with no lock.owner to read it from (a plain VMDK).
inline long DaemonPidByMountpoint(const std::string& mountpoint) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::vector<std::string> argv;
    std::stringstream cmdline(ReadText(entry.path() / "cmdline"));
    for (std::string arg; std::getline(cmdline, arg, '\0');) argv.push_back(arg);
    if (argv.empty() || argv[0] != ClonefsPath()) continue;
    if (std::find(argv.begin() + 1, argv.end(), mountpoint) == argv.end()) continue;
    if (ProcessAlive(std::stol(name))) return std::stol(name);
  }
  return 0;
}

inline bool IsMountpoint(const std::string& path) {
  return Run({"mountpoint", "-q", path}).exit_code == 0;
}

// How many mounts /proc/self/mountinfo lists at `path` (field 5): more than one when
// something was stacked on a mount.
inline int MountsAt(const std::string& path) {
  std::istringstream mounts(ReadText("/proc/self/mountinfo"));
  int count = 0;
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string field;
    for (int i = 0; i < 5; ++i) fields >> field;
    if (common::UnescapeMountField(field) == path) ++count;
  }
  return count;
}

// open(path, flags) and close: 0 when it opened, else its errno.
inline int OpenErrno(const std::string& path, int flags, mode_t mode = 0644) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// `qemu-io -f vmdk -t none`: O_DIRECT, so reads come from the daemon, not from pages the
// kernel cached when the same data was written.
inline ::testing::AssertionResult QemuIoUncached(const std::string& image,
                                                 const std::vector<std::string>& commands) {
  std::vector<std::string> argv = {"qemu-io", "-f", "vmdk", "-t", "none"};
  for (const auto& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  argv.push_back(image);
  return RunsOk(argv);
}

// `qemu-img compare [options] a b` says "Images are identical."; the failure shows where
// they differ (qemu-img prints that on stdout).
inline ::testing::AssertionResult QemuImgCompare(const std::string& a, const std::string& b,
                                                 std::vector<std::string> options = {}) {
  std::vector<std::string> argv = {"qemu-img", "compare"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back(a);
  argv.push_back(b);
  CommandResult r = Run(argv);
  if (r.exit_code == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "qemu-img compare " << a << " " << b << " exited "
                                       << r.exit_code << ": " << r.out << r.err;
}

// The refusal contract (DESIGN.md "Commands"): non-zero exit, and stderr is exactly one
// line `clonefs: <file>: <cause>` that contains `needle` (a file name, a cause), ignoring
// case.
inline ::testing::AssertionResult IsOneLineRefusal(const CommandResult& r,
                                                   const std::string& needle) {
  return integration::IsOneLineError(r, needle, "clonefs");
}

class MountedClone {
 public:
  // Mounts `vm` (a clone directory, .vmx or .vmdk) at `mountpoint` (created if needed).
  MountedClone(std::string vm, std::string mountpoint, std::vector<std::string> extra = {})
      : vm_(std::move(vm)), mountpoint_(std::move(mountpoint)) {
    std::filesystem::create_directories(mountpoint_);
    std::vector<std::string> args = {vm_, mountpoint_};
    args.insert(args.end(), extra.begin(), extra.end());
    result_ = Clonefs(args);
    if (result_.exit_code == 0) {
      mounted_ = true;
      pid_ = std::filesystem::is_directory(vm_ + "/.clonefs") ? DaemonPid(vm_)
                                                              : DaemonPidByMountpoint(mountpoint_);
    }
  }
  ~MountedClone() { Unmount(); }
  MountedClone(const MountedClone&) = delete;
  MountedClone& operator=(const MountedClone&) = delete;

  bool ok() const { return mounted_; }
  const CommandResult& result() const { return result_; }
  const std::string& path() const { return mountpoint_; }
  std::string operator/(const std::string& name) const { return mountpoint_ + "/" + name; }
  long pid() const { return pid_; }

  // fusermount3 -u, then waits for the daemon to flush and exit. Returns false if the
  // unmount or the wait failed (the mount is then detached lazily, never left behind).
  bool Unmount() {
    if (!mounted_) return true;
    mounted_ = false;
    bool ok = false;
    for (int attempt = 0; attempt < 50 && !ok; ++attempt) {
      ok = Run({"fusermount3", "-u", mountpoint_}).exit_code == 0;
      if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // EBUSY
    }
    if (!ok) Run({"fusermount3", "-u", "-z", mountpoint_});
    ok = WaitForExit(pid_) && ok;
    return ok;
  }

  // The daemon dies without flushing (kill -9); the dead mount is then removed.
  void Kill() {
    if (!mounted_) return;
    mounted_ = false;
    kill(static_cast<pid_t>(pid_), SIGKILL);
    WaitForExit(pid_);
    Run({"fusermount3", "-u", "-z", mountpoint_});
  }

  // SIGTERM, as a service manager stops the daemon.
  bool Terminate() {
    if (!mounted_) return true;
    mounted_ = false;
    kill(static_cast<pid_t>(pid_), SIGTERM);
    bool exited = WaitForExit(pid_);
    if (IsMountpoint(mountpoint_)) Run({"fusermount3", "-u", "-z", mountpoint_});
    return exited;
  }

 private:
  std::string vm_;
  std::string mountpoint_;
  CommandResult result_;
  bool mounted_ = false;
  long pid_ = 0;
};

#define ASSERT_MOUNTED(m) \
  ASSERT_TRUE((m).ok()) << "clonefs failed (" << (m).result().exit_code << "): " << (m).result().err

class MountTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_ / name; }

  // A qemu-img-made parent of `size` with `commands` (qemu-io) written into it.
  std::string MakeParent(const std::string& name, const std::string& size,
                         const std::vector<std::string>& commands = {},
                         const std::string& subformat = "monolithicSparse") {
    const std::string path = Path(name);
    EXPECT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", "-o",
                        "subformat=" + subformat, path, size}));
    if (!commands.empty()) {
      EXPECT_TRUE(QemuIo(path, commands));
    }
    return path;
  }

  std::string Clone(const std::string& source, const std::string& name) {
    const std::string dest = Path(name);
    auto r = Clonectl({"clone", source, dest, "--linked"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return dest;
  }

  TempDir dir_;
};

}  // namespace mount_test
