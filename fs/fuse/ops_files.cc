// SPDX-License-Identifier: Apache-2.0
// File requests: open/create, read, write, fsync, fallocate, lseek, release. Presented
// flat disks go to the engine; everything else is a real file reached through dir_fd_.
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "fs/fuse/clonefs_fs.h"

namespace clonefs {
namespace {

// One read buffer per request thread, grown to the largest request it has served
// (at most max_read), page-aligned so that copies into it run at full speed.
std::span<std::byte> ReadBuffer(size_t size) {
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<std::byte, Free> buffer;
  thread_local size_t capacity = 0;
  if (capacity < size) {
    buffer.reset(static_cast<std::byte*>(std::aligned_alloc(4096, (size + 4095) & ~size_t{4095})));
    capacity = buffer ? size : 0;
  }
  return {buffer.get(), buffer ? size : 0};
}

}  // namespace

void ClonefsFs::Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto node = nodes_.Get(ino);
  if (!node) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  const bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
  auto handle = std::make_unique<Handle>();
  handle->kind = node->kind;
  handle->disk = node->disk;
  if (node->kind == NodeKind::kFlat || (node->kind == NodeKind::kDescriptor && node->path.empty())) {
    if (writing && (vm_.read_only() || node->kind == NodeKind::kDescriptor)) {
      fuse_reply_err(req, EROFS);
      return;
    }
    if (fi->flags & O_TRUNC) {
      fuse_reply_err(req, EPERM);  // would empty a virtual disk; its size is fixed
      return;
    }
    // Only this daemon changes a presented disk, so cached pages stay valid across opens.
    fi->keep_cache = 1;
  } else {
    if (writing && vm_.read_only()) {
      fuse_reply_err(req, EROFS);
      return;
    }
    // O_DIRECT is honoured by the kernel's FUSE layer (direct requests); the real file is
    // opened through the page cache. O_APPEND stays: pwrite on such a descriptor appends
    // at the real end, whatever offset the kernel's cached size suggested.
    int flags = fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT);
    handle->fd = openat(dir_fd_, node->path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW);
    if (handle->fd < 0) {
      fuse_reply_err(req, errno);
      return;
    }
  }
  fi->fh = reinterpret_cast<uint64_t>(handle.release());
  if (fuse_reply_open(req, fi) != 0) Release(nullptr, ino, fi);
}

void ClonefsFs::Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                       fuse_file_info* fi) {
  Node dir;
  if (int err = CreatableIn(parent, name, &dir); err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  std::string path = JoinPath(dir.path, name);
  int flags = fi->flags & ~(O_NOCTTY | O_DIRECT);
  auto handle = std::make_unique<Handle>();
  handle->fd = openat(dir_fd_, path.c_str(), flags | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
  if (handle->fd < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_entry_param e{};
  if (fstat(handle->fd, &e.attr) != 0) {
    int err = errno;
    close(handle->fd);
    fuse_reply_err(req, err);
    return;
  }
  e.ino = nodes_.LookupPassthrough(path);
  e.attr.st_ino = e.ino;
  e.attr_timeout = e.entry_timeout = options_.attr_timeout_s;
  fi->fh = reinterpret_cast<uint64_t>(handle.release());
  if (fuse_reply_create(req, &e, fi) != 0) Release(nullptr, e.ino, fi);
}

void ClonefsFs::Read(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
  const Handle& h = *reinterpret_cast<Handle*>(fi->fh);
  if (h.fd >= 0) {
    // Spliced straight from the real file when the kernel supports it.
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = h.fd;
    buf.buf[0].pos = offset;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
    return;
  }
  if (h.kind == NodeKind::kDescriptor) {
    const std::string& text = vm_.disks()[h.disk].descriptor_text;
    size_t start = std::min(static_cast<size_t>(offset), text.size());
    fuse_reply_buf(req, text.data() + start, std::min(size, text.size() - start));
    return;
  }
  const engine::VirtualDisk& disk = DiskOf(h.disk);
  const uint64_t capacity = disk.capacity_bytes();
  if (offset < 0 || static_cast<uint64_t>(offset) >= capacity) {
    fuse_reply_buf(req, nullptr, 0);  // end of file
    return;
  }
  size = static_cast<size_t>(std::min<uint64_t>(size, capacity - offset));
  std::span<std::byte> dst = ReadBuffer(size);
  if (dst.size() < size) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  common::Status s = disk.Read(static_cast<uint64_t>(offset), dst);
  if (!s.ok()) {
    fuse_reply_err(req, s.code());
    return;
  }
  fuse_reply_buf(req, reinterpret_cast<const char*>(dst.data()), size);
}

void ClonefsFs::Write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t offset,
                      fuse_file_info* fi) {
  const Handle& h = *reinterpret_cast<Handle*>(fi->fh);
  if (h.fd >= 0) {
    ssize_t n = pwrite(h.fd, buf, size, offset);
    if (n < 0) fuse_reply_err(req, errno);
    else fuse_reply_write(req, static_cast<size_t>(n));
    return;
  }
  if (h.kind != NodeKind::kFlat) {
    fuse_reply_err(req, EROFS);
    return;
  }
  engine::VirtualDisk& disk = DiskOf(h.disk);
  const uint64_t capacity = disk.capacity_bytes();
  if (offset < 0 || static_cast<uint64_t>(offset) >= capacity) {
    fuse_reply_err(req, size == 0 ? 0 : EFBIG);
    return;
  }
  // A write crossing the end is cut short there, as on a block device.
  size = static_cast<size_t>(std::min<uint64_t>(size, capacity - offset));
  common::Status s =
      disk.Write(static_cast<uint64_t>(offset),
                 std::span(reinterpret_cast<const std::byte*>(buf), size));
  if (!s.ok()) {
    fuse_reply_err(req, s.code());
    return;
  }
  MarkWritten(h.disk);
  fuse_reply_write(req, size);
}

void ClonefsFs::Fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  const Handle& h = *reinterpret_cast<Handle*>(fi->fh);
  int err = 0;
  if (h.fd >= 0) {
    if ((datasync ? fdatasync(h.fd) : fsync(h.fd)) != 0) err = errno;
  } else if (h.kind == NodeKind::kFlat) {
    err = FlushDisk(h.disk);
  }
  fuse_reply_err(req, err);
}

void ClonefsFs::Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  std::unique_ptr<Handle> h(reinterpret_cast<Handle*>(fi->fh));
  if (h->fd >= 0) close(h->fd);
  if (req != nullptr) fuse_reply_err(req, 0);
}

void ClonefsFs::Fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length,
                          fuse_file_info* fi) {
  const Handle& h = *reinterpret_cast<Handle*>(fi->fh);
  if (h.fd >= 0) {
    fuse_reply_err(req, fallocate(h.fd, mode, offset, length) == 0 ? 0 : errno);
    return;
  }
  if (h.kind != NodeKind::kFlat || vm_.read_only()) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (offset < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  engine::VirtualDisk& disk = DiskOf(h.disk);
  const uint64_t capacity = disk.capacity_bytes();
  const uint64_t end = static_cast<uint64_t>(offset) + static_cast<uint64_t>(length);
  const int supported = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if ((mode & ~supported) != 0) {
    fuse_reply_err(req, EOPNOTSUPP);  // collapse/insert range would change the size
    return;
  }
  if (!(mode & FALLOC_FL_KEEP_SIZE) && end > capacity) {
    fuse_reply_err(req, EFBIG);  // would grow a fixed-size disk
    return;
  }
  if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    if (static_cast<uint64_t>(offset) < capacity) {
      common::Status s = disk.Discard(static_cast<uint64_t>(offset),
                                      std::min(end, capacity) - static_cast<uint64_t>(offset));
      if (!s.ok()) {
        fuse_reply_err(req, s.code());
        return;
      }
      MarkWritten(h.disk);
    }
  }
  // Plain allocation reserves nothing: the delta is sparse by design (docs/daemon.md).
  fuse_reply_err(req, 0);
}

void ClonefsFs::Lseek(fuse_req_t req, fuse_ino_t, off_t offset, int whence, fuse_file_info* fi) {
  const Handle& h = *reinterpret_cast<Handle*>(fi->fh);
  if (h.fd >= 0) {
    off_t pos = lseek(h.fd, offset, whence);
    if (pos < 0) fuse_reply_err(req, errno);
    else fuse_reply_lseek(req, pos);
    return;
  }
  if (whence != SEEK_DATA && whence != SEEK_HOLE) {
    fuse_reply_err(req, EINVAL);  // the kernel handles SEEK_SET/CUR/END itself
    return;
  }
  const uint64_t size = h.kind == NodeKind::kFlat ? DiskOf(h.disk).capacity_bytes()
                                                 : vm_.disks()[h.disk].descriptor_text.size();
  if (offset < 0 || static_cast<uint64_t>(offset) >= size) {
    fuse_reply_err(req, ENXIO);
    return;
  }
  if (h.kind != NodeKind::kFlat) {  // in-memory text: all data
    fuse_reply_lseek(req, whence == SEEK_DATA ? offset : static_cast<off_t>(size));
    return;
  }
  const engine::VirtualDisk& disk = DiskOf(h.disk);
  auto next = whence == SEEK_DATA ? disk.NextData(static_cast<uint64_t>(offset))
                                  : disk.NextHole(static_cast<uint64_t>(offset));
  if (!next) {
    fuse_reply_err(req, next.error().code());
    return;
  }
  if (whence == SEEK_DATA && next.value() >= size) {
    fuse_reply_err(req, ENXIO);  // no data at or after offset
    return;
  }
  fuse_reply_lseek(req, static_cast<off_t>(next.value()));
}

}  // namespace clonefs
