// SPDX-License-Identifier: Apache-2.0
#pragma once

// Real FUSE mounts for the integration tests: a MountedClone runs the clonefs binary and
// unmounts in its destructor, waiting for the daemon to exit (so a test that fails
// half-way still leaves no mount and no process behind). MountTest gives each test a
// temporary directory with a qemu-img-made parent and helpers to clone and mount it.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

inline bool ProcessAlive(long pid) { return pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0; }

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

inline bool IsMountpoint(const std::string& path) {
  return Run({"mountpoint", "-q", path}).exit_code == 0;
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
      if (std::filesystem::is_directory(vm_ + "/.clonefs")) pid_ = DaemonPid(vm_);
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
