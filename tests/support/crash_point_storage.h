// SPDX-License-Identifier: Apache-2.0
#pragma once

// A Storage over another that kills the process (_exit) just before its Nth mutating
// operation (or, in kFail mode, fails that operation with EIO, as a full or broken disk
// would): what a `kill -9` at that moment leaves on disk, for crash tests of
// multi-step changes (snapshot, revert, merge, full clone). Run the change in a forked
// child with N = 1, 2, ... until it completes; after each cut the parent checks that the
// VM is in its old or its new state. Counted: creating, renaming, removing, chmod and
// syncing entries; writing, truncating, punching, syncing files; flushing and reserving
// mapped ranges. (Stores into a mapping are not operations: their pages reach the file
// whenever the kernel likes, which a kill does not change.)

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>

#include "common/storage.h"

namespace testing_support {

inline constexpr int kCrashExitCode = 77;

class CrashPointStorage final : public common::Storage {
 public:
  enum class Mode { kKill, kFail };
  CrashPointStorage(common::Storage& inner, long crash_at, Mode mode = Mode::kKill)
      : inner_(inner), crash_at_(crash_at), mode_(mode) {}

  long operations() const { return count_.load(); }

  // Counts one mutating operation: dies, or fails it, if it is the Nth.
  common::Status Step() {
    if (++count_ != crash_at_) return common::Status::Ok();
    if (mode_ == Mode::kKill) ::_exit(kCrashExitCode);
    return common::Status::FromErrno(EIO, "injected fault");
  }

  common::Result<std::unique_ptr<common::File>> Open(const std::string& path,
                                                     common::OpenMode mode) override {
    BOOST_OUTCOME_TRY(file, inner_.Open(path, mode));
    return Wrap(std::move(file));
  }
  common::Result<std::unique_ptr<common::File>> CreateExclusive(const std::string& path) override {
    if (common::Status s = Step(); !s.ok()) return s;
    BOOST_OUTCOME_TRY(file, inner_.CreateExclusive(path));
    return Wrap(std::move(file));
  }
  common::Result<common::FileInfo> Stat(const std::string& path) override {
    return inner_.Stat(path);
  }
  common::Status Rename(const std::string& from, const std::string& to, bool no_replace) override {
    if (common::Status s = Step(); !s.ok()) return s;
    return inner_.Rename(from, to, no_replace);
  }
  common::Status Remove(const std::string& path) override {
    if (common::Status s = Step(); !s.ok()) return s;
    return inner_.Remove(path);
  }
  common::Result<std::unique_ptr<common::MappedFile>> MapFile(const std::string& path,
                                                              common::OpenMode mode) override {
    BOOST_OUTCOME_TRY(map, inner_.MapFile(path, mode));
    return std::unique_ptr<common::MappedFile>(new Mapped(*this, std::move(map)));
  }
  common::Status CreateDirectory(const std::string& path) override {
    if (common::Status s = Step(); !s.ok()) return s;
    return inner_.CreateDirectory(path);
  }
  common::Status RemoveDirectory(const std::string& path) override {
    if (common::Status s = Step(); !s.ok()) return s;
    return inner_.RemoveDirectory(path);
  }
  common::Result<std::vector<std::string>> ListDirectory(const std::string& path) override {
    return inner_.ListDirectory(path);
  }
  common::Status SyncDirectory(const std::string& path) override {
    if (common::Status s = Step(); !s.ok()) return s;
    return inner_.SyncDirectory(path);
  }
  common::Status SetMode(const std::string& path, uint32_t mode) override {
    if (common::Status s = Step(); !s.ok()) return s;
    return inner_.SetMode(path, mode);
  }

 private:
  class CountedFile final : public common::File {
   public:
    CountedFile(CrashPointStorage& owner, std::unique_ptr<common::File> inner)
        : File(inner->path()), owner_(owner), inner_(std::move(inner)) {}
    common::Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> dst) const override {
      return inner_->ReadAt(offset, dst);
    }
    common::Status WriteAt(uint64_t offset, std::span<const std::byte> src) override {
      if (common::Status s = owner_.Step(); !s.ok()) return s;
      return inner_->WriteAt(offset, src);
    }
    common::Result<uint64_t> Size() const override { return inner_->Size(); }
    common::Status Truncate(uint64_t size) override {
      if (common::Status s = owner_.Step(); !s.ok()) return s;
      return inner_->Truncate(size);
    }
    common::Status Sync() override {
      if (common::Status s = owner_.Step(); !s.ok()) return s;
      return inner_->Sync();
    }
    common::Status PunchHole(uint64_t offset, uint64_t length) override {
      if (common::Status s = owner_.Step(); !s.ok()) return s;
      return inner_->PunchHole(offset, length);
    }
    common::Result<uint64_t> NextData(uint64_t offset) const override {
      return inner_->NextData(offset);
    }
    common::Result<uint64_t> NextHole(uint64_t offset) const override {
      return inner_->NextHole(offset);
    }

   private:
    CrashPointStorage& owner_;
    std::unique_ptr<common::File> inner_;
  };

  class Mapped final : public common::MappedFile {
   public:
    Mapped(CrashPointStorage& owner, std::unique_ptr<common::MappedFile> inner)
        : owner_(owner), inner_(std::move(inner)) {}
    const std::string& path() const override { return inner_->path(); }
    std::span<std::byte> bytes() override { return inner_->bytes(); }
    common::Status Flush(uint64_t offset, uint64_t length) override {
      if (common::Status s = owner_.Step(); !s.ok()) return s;
      return inner_->Flush(offset, length);
    }
    common::Status Reserve(uint64_t offset, uint64_t length) override {
      if (common::Status s = owner_.Step(); !s.ok()) return s;
      return inner_->Reserve(offset, length);
    }

   private:
    CrashPointStorage& owner_;
    std::unique_ptr<common::MappedFile> inner_;
  };

  common::Result<std::unique_ptr<common::File>> Wrap(std::unique_ptr<common::File> file) {
    return std::unique_ptr<common::File>(new CountedFile(*this, std::move(file)));
  }

  common::Storage& inner_;
  const long crash_at_;
  const Mode mode_;
  std::atomic<long> count_{0};
};

}  // namespace testing_support
