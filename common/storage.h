// SPDX-License-Identifier: Apache-2.0
#pragma once

// The abstract file system under every module. vmdk/ and the engine reach files only
// through these interfaces, so tests and fuzzers run them on MemoryStorage, and errno is
// turned into a Status in exactly one place: the implementation, right after the syscall.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace common {

struct FileInfo {
  uint64_t size_bytes = 0;
  int64_t mtime_ns = 0;
  uint64_t device = 0;
  uint64_t inode = 0;
  uint32_t mode = 0;  // st_mode, type and permission bits
  bool is_regular = false;
  bool is_directory = false;
  uint64_t allocated_bytes = 0;  // space the file takes on disk (st_blocks x 512)
};

// An open file. Reads are positional and thread-safe: any number of threads may call
// ReadAt concurrently. Writes are positional too; callers serialise writes that overlap.
class File {
 public:
  explicit File(std::string path) : path_(std::move(path)) {}
  virtual ~File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // The path the file was opened with; every message about this file names it.
  const std::string& path() const { return path_; }

  // Reads up to dst.size() bytes at offset_bytes. Returns fewer only at end of file.
  virtual Result<size_t> ReadAt(uint64_t offset_bytes, std::span<std::byte> dst) const = 0;
  // Reads all of dst at offset_bytes if the page cache holds every byte of it, without
  // waiting for the device (preadv2 RWF_NOWAIT): true when done; false when anything is
  // missing, and dst's contents are then unspecified. Asking may start the kernel's
  // readahead. Errors count as false: ReadAt reports them. Default: false (no cache).
  virtual bool ReadCachedAt(uint64_t /*offset_bytes*/, std::span<std::byte> /*dst*/) const {
    return false;
  }
  virtual Status WriteAt(uint64_t offset_bytes, std::span<const std::byte> src) = 0;
  virtual Result<uint64_t> Size() const = 0;
  virtual Status Truncate(uint64_t size_bytes) = 0;
  // Makes written data durable (fdatasync).
  virtual Status Sync() = 0;
  // Starts writing [offset_bytes, offset_bytes + length_bytes) back to the device without
  // waiting for it (sync_file_range WRITE): a hint for long copies, so that their final
  // Sync finds little left to write. Durability still needs Sync. Default: nothing.
  virtual Status StartWriteback(uint64_t /*offset_bytes*/, uint64_t /*length_bytes*/) {
    return Status::Ok();
  }
  // Deallocates [offset_bytes, offset_bytes + length_bytes) so it reads as zeros, keeping
  // the size (fallocate PUNCH_HOLE | KEEP_SIZE).
  virtual Status PunchHole(uint64_t offset_bytes, uint64_t length_bytes) = 0;

  // The first byte at or after offset_bytes that the file system stores data for
  // (SEEK_DATA), or the file size if none; and the first byte of a hole at or after
  // offset_bytes (SEEK_HOLE; the file size counts as a hole). Files without hole
  // information report everything as data.
  virtual Result<uint64_t> NextData(uint64_t offset_bytes) const { return offset_bytes; }
  virtual Result<uint64_t> NextHole(uint64_t /*offset_bytes*/) const { return Size(); }

  // Reads exactly dst.size() bytes or fails with EIO naming `what`, the offset and the
  // file ("base.vmdk: grain table 3 at byte 4096: unexpected end of file").
  Status ReadExactAt(uint64_t offset_bytes, std::span<std::byte> dst, std::string_view what) const;

 private:
  std::string path_;
};

enum class OpenMode { kReadOnly, kReadWrite };

// A whole file mapped into memory (the delta layer's header and bitmap). Mapped
// read-write, stores into bytes() may reach the file at any time (the kernel writes dirty
// pages back when it likes); Flush makes a range durable now. Mapped read-only, bytes()
// must not be stored into, and Flush and Reserve fail with EROFS. The file's size is
// fixed while mapped.
class MappedFile {
 public:
  virtual ~MappedFile() = default;
  virtual const std::string& path() const = 0;
  virtual std::span<std::byte> bytes() = 0;
  // msync(MS_SYNC) of the pages covering [offset_bytes, offset_bytes + length_bytes).
  virtual Status Flush(uint64_t offset_bytes, uint64_t length_bytes) = 0;
  // Allocates the file's blocks under [offset_bytes, offset_bytes + length_bytes) (no-op
  // where they are allocated). A store into a page that is a hole in the file allocates
  // it, and on a full file system that store is a SIGBUS, not an error: call this before
  // storing into pages that may be holes, and a full file system is ENOSPC here instead.
  virtual Status Reserve(uint64_t offset_bytes, uint64_t length_bytes) = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;
  // Creates a new, empty file; fails with EEXIST if anything exists at `path`.
  virtual Result<std::unique_ptr<File>> CreateExclusive(const std::string& path) = 0;
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
  // Renames atomically. With no_replace, fails with EEXIST rather than replace `to`.
  virtual Status Rename(const std::string& from, const std::string& to, bool no_replace) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Maps an existing, non-empty file; read-only needs only read permission (a frozen
  // layer's files are chmod a-w).
  virtual Result<std::unique_ptr<MappedFile>> MapFile(const std::string& path, OpenMode mode) = 0;

  // Directories. CreateDirectory fails with EEXIST if anything is at `path`;
  // RemoveDirectory needs it empty; ListDirectory gives entry names (no . or ..), sorted.
  virtual Status CreateDirectory(const std::string& path) = 0;
  virtual Status RemoveDirectory(const std::string& path) = 0;
  virtual Result<std::vector<std::string>> ListDirectory(const std::string& path) = 0;
  // Makes the directory's entries (creations, renames) durable (fsync of the directory).
  virtual Status SyncDirectory(const std::string& path) = 0;
  // chmod.
  virtual Status SetMode(const std::string& path, uint32_t mode) = 0;
};

// The files a creating function made so far, removed when it returns early (the guard is
// destroyed without Keep): a failure leaves nothing half-made behind, and never removes a
// file the function did not create.
class CreatedFiles {
 public:
  explicit CreatedFiles(Storage& storage) : storage_(storage) {}
  ~CreatedFiles() {
    if (keep_) return;
    for (const std::string& path : paths_) (void)storage_.Remove(path);
  }
  CreatedFiles(const CreatedFiles&) = delete;
  CreatedFiles& operator=(const CreatedFiles&) = delete;
  void Add(std::string path) { paths_.push_back(std::move(path)); }
  void Keep() { keep_ = true; }

 private:
  Storage& storage_;
  std::vector<std::string> paths_;
  bool keep_ = false;
};

// The real file system (POSIX syscalls). Stateless and thread-safe.
Storage& PosixStorage();

// The real file system with the read policy for parents shared by many clones, which the
// daemon uses (docs/daemon.md, "Reading parents"). Files opened read-only:
// - are read from the page cache when the range is all cached (cachestat(2) for large
//   reads, preadv2 RWF_NOWAIT for small ones);
// - otherwise, reads of 128 KiB or more, 4 KiB aligned, go around it (O_DIRECT), so a
//   large uncached read costs the device's time, not a page-cache fill plus a copy;
// - and smaller ones go through it after asking for the aligned 64 KiB around them
//   (POSIX_FADV_WILLNEED), so a neighbour's next read, in this clone or another, is a hit.
// Files opened for writing (a clone's delta) get the small-read part only: a miss
// fetches the 64 KiB around it, so blocks a clone wrote near each other come back
// together; nothing is read with O_DIRECT.
Storage& SharedParentStorage();

// SharedParentStorage's policy for packed frozen layers (docs/delta-format.md), whose
// files hold only live blocks in block order: a miss reads around it in a wider window.
Storage& FrozenLayerStorage();

}  // namespace common
