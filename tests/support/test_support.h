// SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers shared by every test module.

#include <cstddef>
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

std::vector<std::byte> ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, const std::vector<std::byte>& bytes);

// The shared samples directory (read-only) and a writable copy of it in `dir` with every
// `.gz` file decompressed beside the others under its name without `.gz`.
std::string SamplesDir();
void CopySamplesDecompressed(const std::string& dir);

// Path of the clonectl binary under test.
std::string ClonectlPath();

}  // namespace testing_support
