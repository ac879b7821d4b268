// SPDX-License-Identifier: Apache-2.0
#pragma once

// Kernel objects the mount tests stack on or under a clonefs mount: a loop device over a
// presented flat disk, and ordinary mounts (ext4 on such a loop device, a small tmpfs
// holding a clone). Each one is released in its destructor, so a test that fails half-way
// leaves nothing attached. Declare them in the order they stack (the clonefs mount, then
// the loop device on it, then the ext4 on the loop device): destruction runs in reverse,
// which is the only order in which each release can succeed.
// Also the data helpers those tests share: patterned bytes, byte ranges of a file, and
// the crash contract's "each block reads its old or its new contents".

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/mount/mount_fixture.h"

namespace mount_test {

// `losetup --find --show FILE`; `losetup -d` on destruction (or Detach()).
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& file) {
    CommandResult r = Run({"losetup", "--find", "--show", file});
    if (r.exit_code == 0 && r.out.rfind("/dev/loop", 0) == 0) {
      device_ = r.out.substr(0, r.out.find('\n'));
    } else {
      error_ = r.err;
    }
  }
  ~LoopDevice() { Detach(); }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  bool ok() const { return !device_.empty(); }
  const std::string& device() const { return device_; }
  const std::string& error() const { return error_; }

  // Detaches and waits until the device has let go of its backing file (the kernel
  // finishes a detach asynchronously when the device was still open), so that the file
  // system under the file can be unmounted right after. False if it did not let go.
  bool Detach() {
    if (device_.empty()) return true;
    const std::string device = device_;
    device_.clear();
    bool detached = Run({"losetup", "-d", device}).exit_code == 0;
    const std::string backing =
        "/sys/block/" + std::filesystem::path(device).filename().string() + "/loop/backing_file";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::filesystem::exists(backing)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return detached;
  }

 private:
  std::string device_;
  std::string error_;
};

// `mount -t TYPE [-o OPTIONS] SOURCE TARGET` (TARGET created if needed); `umount` on
// destruction, lazily if it stays busy, so nothing is left mounted.
class KernelMount {
 public:
  KernelMount(const std::string& type, const std::string& source, std::string target,
              const std::string& options = "")
      : target_(std::move(target)) {
    std::filesystem::create_directories(target_);
    std::vector<std::string> argv = {"mount", "-t", type};
    if (!options.empty()) argv.insert(argv.end(), {"-o", options});
    argv.insert(argv.end(), {source, target_});
    result_ = Run(argv);
    mounted_ = result_.exit_code == 0;
  }
  ~KernelMount() { Unmount(); }
  KernelMount(const KernelMount&) = delete;
  KernelMount& operator=(const KernelMount&) = delete;

  bool ok() const { return mounted_; }
  const CommandResult& result() const { return result_; }
  const std::string& path() const { return target_; }
  std::string operator/(const std::string& name) const { return target_ + "/" + name; }

  bool Unmount() {
    if (!mounted_) return true;
    mounted_ = false;
    for (int attempt = 0; attempt < 50; ++attempt) {
      if (Run({"umount", target_}).exit_code == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // EBUSY
    }
    Run({"umount", "-l", target_});
    return false;
  }

 private:
  std::string target_;
  CommandResult result_;
  bool mounted_ = false;
};

#define ASSERT_KERNEL_MOUNTED(m)                                                           \
  ASSERT_TRUE((m).ok()) << "mount " << (m).path() << " failed (" << (m).result().exit_code \
                        << "): " << (m).result().err

// `bytes` pseudo-random bytes from `seed` (xorshift): a 4 KiB block found at the wrong
// offset, or taken from data made with another seed, does not match.
inline std::string PatternBytes(size_t bytes, uint32_t seed) {
  std::string data(bytes, '\0');
  uint64_t state = 0x9e3779b97f4a7c15ULL * (seed + 1);
  for (size_t i = 0; i < bytes; i += 8) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    for (size_t j = 0; j < 8 && i + j < bytes; ++j)
      data[i + j] = static_cast<char>(state >> (8 * j));
  }
  return data;
}

// `length_bytes` bytes of `path` from `offset_bytes` (pread); "" if it cannot read them all.
inline std::string ReadRange(const std::string& path, uint64_t offset_bytes, size_t length_bytes) {
  std::string data(length_bytes, '\0');
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  const ssize_t n = ::pread(fd, data.data(), length_bytes, static_cast<off_t>(offset_bytes));
  ::close(fd);
  return n == static_cast<ssize_t>(length_bytes) ? data : "";
}

// Succeeds when every 4 KiB block of `got` equals the same block of `old_bytes` or of
// `new_bytes` (what a block written without fsync may read after a crash); otherwise
// names the first block that is neither.
inline ::testing::AssertionResult EachBlockIsOldOrNew(const std::string& got,
                                                      const std::string& old_bytes,
                                                      const std::string& new_bytes) {
  constexpr size_t kBlockBytes = 4096;
  if (got.size() != old_bytes.size() || got.size() != new_bytes.size()) {
    return ::testing::AssertionFailure() << "sizes differ: read " << got.size() << " bytes";
  }
  for (size_t at = 0; at < got.size(); at += kBlockBytes) {
    const size_t n = std::min(kBlockBytes, got.size() - at);
    if (got.compare(at, n, old_bytes, at, n) != 0 && got.compare(at, n, new_bytes, at, n) != 0) {
      return ::testing::AssertionFailure()
             << "block at +" << at << " holds neither its old nor its new contents";
    }
  }
  return ::testing::AssertionSuccess();
}

// How many times `needle` occurs in `text` (warnings in a daemon.log).
inline size_t CountOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

}  // namespace mount_test
