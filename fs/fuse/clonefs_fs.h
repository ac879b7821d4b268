// SPDX-License-Identifier: Apache-2.0
#pragma once

// The FUSE side of a mount: translates libfuse low-level requests into calls on an
// engine::MountedVm (presented disks) or on the VM directory (passed-through files).
// Every handler replies exactly once; ops_table.cc guards each against exceptions.
//
// Decisions (docs/daemon.md): D-flat.vmdk's size is fixed (a resize or O_TRUNC gets
// EPERM; a write starting at or past the end gets EFBIG, one crossing it is cut short);
// its mode and times may be changed and are kept for the life of the mount; fallocate
// without PUNCH_HOLE/ZERO_RANGE succeeds without reserving space (the delta is sparse
// by design); the metadata directory and any real file a presented name shadows are
// hidden.

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs/engine/mounted_vm.h"
#include "fs/fuse/node_table.h"

namespace clonefs {

// The largest read or write request: 256 pages, the kernel's limit (max_pages). The
// same value goes into the max_read mount option and the init reply.
inline constexpr uint32_t kMaxRequestBytes = 1 << 20;

struct FsOptions {
  double attr_timeout_s = 1.0;
  std::chrono::milliseconds flush_interval{2000};
};

class ClonefsFs {
 public:
  // vm_dir_fd: an O_PATH|O_DIRECTORY descriptor of the VM directory, or -1 when there
  // is none (a plain VMDK mounted read-only). Owned by the caller.
  ClonefsFs(engine::MountedVm& vm, int vm_dir_fd, FsOptions options);
  ~ClonefsFs();

  static const fuse_lowlevel_ops& Ops();  // ops_table.cc

  // Makes every disk's writes durable at a bounded interval, on a thread of its own.
  void StartFlushTimer();
  void StopFlushTimer();

  // ops_entries.cc
  void Init(fuse_conn_info* conn);
  void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Forget(fuse_ino_t ino, uint64_t nlookup);
  void GetAttr(fuse_req_t req, fuse_ino_t ino);
  void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
               fuse_file_info* fi);
  void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi);
  void ReleaseDir(fuse_req_t req, fuse_file_info* fi);
  void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name, bool directory);
  void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned int flags);
  void ReadLink(fuse_req_t req, fuse_ino_t ino);
  void StatFs(fuse_req_t req, fuse_ino_t ino);

  // ops_files.cc
  void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi);
  void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi);
  void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t offset,
             fuse_file_info* fi);
  void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
  void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                 fuse_file_info* fi);
  void Lseek(fuse_req_t req, fuse_ino_t ino, off_t offset, int whence, fuse_file_info* fi);

 private:
  // What an open file handle (fuse_file_info::fh) points at.
  struct Handle {
    int fd = -1;     // passed-through files and real descriptors
    int disk = -1;   // D-flat.vmdk, or an in-memory D.vmdk
    NodeKind kind = NodeKind::kPassthrough;
  };
  // Attributes of a presented flat disk that the guest side may change.
  struct FlatState {
    mode_t mode = 0644;
    std::atomic<int64_t> mtime_ns{0};
    std::atomic<bool> dirty{false};  // written since the last flush
  };

  // Fills *st for a node; an errno on failure.
  int Stat(const Node& node, fuse_ino_t ino, struct stat* st);
  // The entry for name in the root, if it is a presented one.
  std::optional<fuse_ino_t> PresentedChild(fuse_ino_t parent, const std::string& name) const;
  bool Hidden(fuse_ino_t parent, const std::string& name) const;
  // Where a new entry `name` may be made in `parent`: 0 and its directory node in *dir,
  // or the errno that refuses it (EEXIST for a presented name, EPERM for the hidden
  // metadata directory, EROFS on a read-only mount).
  int CreatableIn(fuse_ino_t parent, const std::string& name, Node* dir) const;
  void ReplyEntry(fuse_req_t req, fuse_ino_t ino, const Node& node);
  void ReplyPassthroughEntry(fuse_req_t req, const std::string& path);
  engine::VirtualDisk& DiskOf(int index) { return *vm_.disks()[index].disk; }
  void MarkWritten(int disk);
  int FlushDisk(int disk);
  void FlushLoop();

  engine::MountedVm& vm_;
  const int dir_fd_;
  const FsOptions options_;
  NodeTable nodes_;
  std::map<std::string, fuse_ino_t> presented_;  // root names -> presented nodes
  std::vector<std::unique_ptr<FlatState>> flat_state_;
  const int64_t mount_time_ns_;

  std::mutex flush_mutex_;
  std::condition_variable flush_wake_;
  bool stop_flushing_ = false;
  std::thread flush_thread_;
};

}  // namespace clonefs
