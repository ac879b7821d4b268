// SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers shared by every test module.

#include <gtest/gtest.h>

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace testing_support {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv (no shell), capturing stdout and stderr.
CommandResult Run(const std::vector<std::string>& argv);
// Runs `sh -c command`.
CommandResult RunShell(const std::string& command);
// Runs argv and succeeds when it exits 0; the failure message shows the command and its
// stderr. Use as ASSERT_TRUE(RunsOk({...})).
::testing::AssertionResult RunsOk(const std::vector<std::string>& argv);

std::vector<std::byte> ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, const std::vector<std::byte>& bytes);

// The shared samples directory (read-only) and a writable copy of it in `dir` with every
// `.gz` file decompressed beside the others under its name without `.gz`.
std::string SamplesDir();
void CopySamplesDecompressed(const std::string& dir);

// Lowercase hex SHA-256 of a file's contents (via sha256sum; meant for small files).
std::string Sha256OfFile(const std::string& path);

// Compares two files byte for byte, reading only where either has data (SEEK_DATA /
// SEEK_HOLE): holes read as zeros, so multi-GiB sparse files compare in milliseconds.
// Returns "" when the contents are equal, else where and how they first differ.
std::string FirstDifference(const std::string& a, const std::string& b);

// Bytes of disk the file occupies (st_blocks * 512).
uint64_t AllocatedBytes(const std::string& path);

// Drops the file's pages from the page cache (posix_fadvise DONTNEED: needs no
// privileges; pages mapped by a live process, or on tmpfs, stay). Throws if it cannot.
void DropFromPageCache(const std::string& path);

// Polls `condition` every 10 ms until it holds or `timeout` has passed; returns its last
// answer. For what the kernel does in its own time (read-ahead landing, caches filling).
bool Eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(1));

// Path of the clonectl binary under test.
std::string ClonectlPath();

}  // namespace testing_support
