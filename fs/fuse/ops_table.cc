// SPDX-License-Identifier: Apache-2.0
// The libfuse low-level operations table: one thunk per request that finds the mount's
// ClonefsFs and calls it. An exception escaping a handler must not unwind into libfuse
// (C code): it is logged and answered with EIO.
#include <spdlog/spdlog.h>

#include <cerrno>
#include <exception>

#include "fs/fuse/clonefs_fs.h"

namespace clonefs {
namespace {

ClonefsFs& Fs(fuse_req_t req) { return *static_cast<ClonefsFs*>(fuse_req_userdata(req)); }

template <class Body>
void Guarded(fuse_req_t req, const char* op, Body&& body) {
  try {
    body(Fs(req));
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", op, e.what());
    fuse_reply_err(req, EIO);
  }
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = [](void* userdata, fuse_conn_info* conn) {
    static_cast<ClonefsFs*>(userdata)->Init(conn);
  };
  ops.lookup = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
    Guarded(req, "lookup", [&](ClonefsFs& fs) { fs.Lookup(req, parent, name); });
  };
  ops.forget = [](fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    Fs(req).Forget(ino, nlookup);
    fuse_reply_none(req);
  };
  ops.forget_multi = [](fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    for (size_t i = 0; i < count; ++i) Fs(req).Forget(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
  };
  ops.getattr = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    Guarded(req, "getattr", [&](ClonefsFs& fs) { fs.GetAttr(req, ino); });
  };
  ops.setattr = [](fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                   fuse_file_info* fi) {
    Guarded(req, "setattr", [&](ClonefsFs& fs) { fs.SetAttr(req, ino, attr, to_set, fi); });
  };
  ops.readlink = [](fuse_req_t req, fuse_ino_t ino) {
    Guarded(req, "readlink", [&](ClonefsFs& fs) { fs.ReadLink(req, ino); });
  };
  ops.mkdir = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    Guarded(req, "mkdir", [&](ClonefsFs& fs) { fs.MkDir(req, parent, name, mode); });
  };
  ops.unlink = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
    Guarded(req, "unlink", [&](ClonefsFs& fs) { fs.Unlink(req, parent, name, false); });
  };
  ops.rmdir = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
    Guarded(req, "rmdir", [&](ClonefsFs& fs) { fs.Unlink(req, parent, name, true); });
  };
  ops.rename = [](fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                  const char* newname, unsigned int flags) {
    Guarded(req, "rename",
            [&](ClonefsFs& fs) { fs.Rename(req, parent, name, newparent, newname, flags); });
  };
  ops.open = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Guarded(req, "open", [&](ClonefsFs& fs) { fs.Open(req, ino, fi); });
  };
  ops.create = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                  fuse_file_info* fi) {
    Guarded(req, "create", [&](ClonefsFs& fs) { fs.Create(req, parent, name, mode, fi); });
  };
  ops.read = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    Guarded(req, "read", [&](ClonefsFs& fs) { fs.Read(req, ino, size, off, fi); });
  };
  ops.write = [](fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                 fuse_file_info* fi) {
    Guarded(req, "write", [&](ClonefsFs& fs) { fs.Write(req, ino, buf, size, off, fi); });
  };
  ops.flush = [](fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); };
  ops.fsync = [](fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
    Guarded(req, "fsync", [&](ClonefsFs& fs) { fs.Fsync(req, ino, datasync, fi); });
  };
  ops.release = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Guarded(req, "release", [&](ClonefsFs& fs) { fs.Release(req, ino, fi); });
  };
  ops.opendir = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Guarded(req, "opendir", [&](ClonefsFs& fs) { fs.OpenDir(req, ino, fi); });
  };
  ops.readdir = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    Guarded(req, "readdir", [&](ClonefsFs& fs) { fs.ReadDir(req, ino, size, off, fi); });
  };
  ops.releasedir = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Guarded(req, "releasedir", [&](ClonefsFs& fs) { fs.ReleaseDir(req, fi); });
  };
  ops.fsyncdir = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); };
  ops.statfs = [](fuse_req_t req, fuse_ino_t ino) {
    Guarded(req, "statfs", [&](ClonefsFs& fs) { fs.StatFs(req, ino); });
  };
  ops.fallocate = [](fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                     fuse_file_info* fi) {
    Guarded(req, "fallocate", [&](ClonefsFs& fs) { fs.Fallocate(req, ino, mode, off, len, fi); });
  };
  ops.lseek = [](fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) {
    Guarded(req, "lseek", [&](ClonefsFs& fs) { fs.Lseek(req, ino, off, whence, fi); });
  };
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& ClonefsFs::Ops() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace clonefs
