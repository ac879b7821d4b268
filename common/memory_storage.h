// SPDX-License-Identifier: Apache-2.0
#pragma once

// An in-memory Storage for tests and fuzzers: files are byte vectors keyed by path.
// Thread-safe. Paths are compared as given (no normalisation), so tests use one spelling.

#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "common/storage.h"

namespace common {

class MemoryStorage final : public Storage {
 public:
  // Creates or replaces a file with these contents.
  void SetFile(const std::string& path, std::vector<std::byte> contents);
  void SetFile(const std::string& path, std::string_view contents);
  // The file's contents, or nullopt if there is none.
  std::optional<std::vector<std::byte>> GetFile(const std::string& path) const;

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Result<std::unique_ptr<File>> CreateExclusive(const std::string& path) override;
  Result<FileInfo> Stat(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to, bool no_replace) override;
  Status Remove(const std::string& path) override;
  Result<std::unique_ptr<MappedFile>> MapFile(const std::string& path) override;

  struct Node {
    std::mutex mutex;
    std::vector<std::byte> data;  // guarded by mutex
    uint64_t inode = 0;
    int64_t mtime_ns = 0;  // bumped on every change
  };

 private:
  mutable std::mutex mutex_;  // guards files_ and next_inode_; taken before any Node::mutex
  std::map<std::string, std::shared_ptr<Node>> files_;
  uint64_t next_inode_ = 1;
};

}  // namespace common
