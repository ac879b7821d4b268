// SPDX-License-Identifier: Apache-2.0
#pragma once

// An in-memory Storage for tests and fuzzers: files are byte vectors keyed by path.
// Thread-safe. Paths are compared as given (no normalisation), so tests use one spelling.
//
// It also models a power cut, for crash tests: each file keeps the contents that were
// made durable (File::Sync, MappedFile::Flush of a range) beside its current contents,
// and Crash() throws away what was not durable. A fault hook can fail any mutating call.

#include <functional>
#include <map>
#include <random>
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
  Result<std::unique_ptr<MappedFile>> MapFile(const std::string& path, OpenMode mode) override;
  Status CreateDirectory(const std::string& path) override;
  Status RemoveDirectory(const std::string& path) override;
  Result<std::vector<std::string>> ListDirectory(const std::string& path) override;
  Status SyncDirectory(const std::string& path) override;
  Status SetMode(const std::string& path, uint32_t mode) override;

  // What a power cut keeps of data written but not made durable.
  enum class CrashMode {
    kLoseUnsynced,  // nothing: the durable contents only
    kKeepAll,       // everything (the kernel happened to write it all back)
    kTornPages,     // each 4 KiB page that differs: old or new at random (seeded)
  };
  // Applies a power cut to every file. Handles to files stay valid and see the result.
  void Crash(CrashMode mode, uint32_t seed = 0);

  // Mutating operations, as seen by the fault hook.
  enum class Op { kWrite, kTruncate, kSync, kPunchHole, kMapFlush, kMapReserve };
  // Called before every mutating operation; a failed Status is returned to the caller
  // instead of doing the operation. Pass nullptr to remove.
  using FaultHook = std::function<Status(Op op, const std::string& path)>;
  void SetFaultHook(FaultHook hook);
  Status CheckFault(Op op, const std::string& path) const;

  struct Node {
    std::mutex mutex;
    std::vector<std::byte> data;     // guarded by mutex
    std::vector<std::byte> durable;  // guarded by mutex: what survives a power cut
    uint64_t inode = 0;
    int64_t mtime_ns = 0;  // bumped on every change
    uint32_t mode = 0644;
  };

 private:
  mutable std::mutex hook_mutex_;
  FaultHook hook_;  // guarded by hook_mutex_

  mutable std::mutex mutex_;  // guards files_ and next_inode_; taken before any Node::mutex
  std::map<std::string, std::shared_ptr<Node>> files_;
  std::map<std::string, uint32_t> directories_;  // path -> mode; "" and "/" implied
  uint64_t next_inode_ = 1;
};

}  // namespace common
