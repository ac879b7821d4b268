// SPDX-License-Identifier: Apache-2.0
// Namespace requests: lookup, attributes, directories, rename, unlink, statfs.
#include <dirent.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "fs/fuse/clonefs_fs.h"

namespace clonefs {
namespace {

// A directory listing taken at opendir: readdir offsets index into it, so entries
// added or removed meanwhile cannot shift what a reader sees.
struct DirListing {
  struct Entry {
    std::string name;
    mode_t type = 0;
    ino_t ino = 0;  // never 0: readdir(3) skips entries whose d_ino is 0
  };
  std::vector<Entry> entries;
};

}  // namespace

void ClonefsFs::Init(fuse_conn_info* conn) {
  // Large requests: the kernel splits reads and writes at max_pages (max_write / page).
  conn->max_write = kMaxRequestBytes;
  conn->max_read = kMaxRequestBytes;  // libfuse refuses a mismatch with the mount option
  conn->max_readahead = kMaxRequestBytes;
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // Only this daemon changes the files, so the kernel may keep cached pages across opens.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

void ClonefsFs::ReplyEntry(fuse_req_t req, fuse_ino_t ino, const Node& node) {
  fuse_entry_param e{};
  e.ino = ino;
  if (int err = Stat(node, ino, &e.attr); err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  e.attr_timeout = e.entry_timeout = options_.attr_timeout_s;
  fuse_reply_entry(req, &e);
}

void ClonefsFs::ReplyPassthroughEntry(fuse_req_t req, const std::string& path) {
  struct stat st {};
  if (fstatat(dir_fd_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_ino_t ino = nodes_.LookupPassthrough(path);
  ReplyEntry(req, ino, Node{NodeKind::kPassthrough, path, -1});
}

void ClonefsFs::Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (auto presented = PresentedChild(parent, name)) {
    ReplyEntry(req, *presented, *nodes_.Get(*presented));
    return;
  }
  auto dir = nodes_.Get(parent);
  if (!dir || dir_fd_ < 0 || Hidden(parent, name)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  ReplyPassthroughEntry(req, JoinPath(dir->path, name));
}

void ClonefsFs::Forget(fuse_ino_t ino, uint64_t nlookup) { nodes_.Forget(ino, nlookup); }

void ClonefsFs::GetAttr(fuse_req_t req, fuse_ino_t ino) {
  auto node = nodes_.Get(ino);
  if (!node) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st {};
  if (int err = Stat(*node, ino, &st); err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_attr(req, &st, options_.attr_timeout_s);
}

void ClonefsFs::SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                        fuse_file_info* fi) {
  auto node = nodes_.Get(ino);
  if (!node) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (vm_.read_only() || (node->kind == NodeKind::kDescriptor && node->path.empty())) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (node->kind == NodeKind::kFlat) {
    FlatState& state = *flat_state_[node->disk];
    if ((to_set & FUSE_SET_ATTR_SIZE) &&
        static_cast<uint64_t>(attr->st_size) != DiskOf(node->disk).capacity_bytes()) {
      fuse_reply_err(req, EPERM);  // a virtual disk's size is its capacity: fixed
      return;
    }
    if (to_set & FUSE_SET_ATTR_MODE) state.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_MTIME) {
      state.mtime_ns = (to_set & FUSE_SET_ATTR_MTIME_NOW)
                           ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count()
                           : attr->st_mtim.tv_sec * 1000000000LL + attr->st_mtim.tv_nsec;
    }
    GetAttr(req, ino);
    return;
  }
  // A real file: apply each change with the *at call, or on the open descriptor.
  const char* path = node->path.c_str();
  const int fd = fi != nullptr ? reinterpret_cast<Handle*>(fi->fh)->fd : -1;
  int rc = 0;
  if (to_set & FUSE_SET_ATTR_MODE) rc = fchmodat(dir_fd_, path, attr->st_mode & 07777, 0);
  if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
    uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
    gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
    rc = fchownat(dir_fd_, path, uid, gid, AT_SYMLINK_NOFOLLOW);
  }
  if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
    if (fd >= 0) {
      rc = ftruncate(fd, attr->st_size);
    } else {
      int tmp = openat(dir_fd_, path, O_WRONLY | O_CLOEXEC);
      rc = tmp < 0 ? -1 : ftruncate(tmp, attr->st_size);
      if (tmp >= 0) close(tmp);
    }
  }
  if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
    timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) times[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME) times[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) times[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME) times[1] = attr->st_mtim;
    rc = utimensat(dir_fd_, path, times, AT_SYMLINK_NOFOLLOW);
  }
  if (rc != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  GetAttr(req, ino);
}

void ClonefsFs::OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto node = nodes_.Get(ino);
  if (!node || node->kind != NodeKind::kPassthrough) {
    fuse_reply_err(req, node ? ENOTDIR : ENOENT);
    return;
  }
  auto listing = std::make_unique<DirListing>();
  listing->entries.push_back({".", S_IFDIR, ino});
  listing->entries.push_back({"..", S_IFDIR, FUSE_ROOT_ID});
  if (ino == FUSE_ROOT_ID) {
    for (const auto& [name, presented] : presented_) {
      listing->entries.push_back({name, S_IFREG, presented});
    }
  }
  if (dir_fd_ >= 0) {
    int fd = openat(dir_fd_, node->path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* dir = fd < 0 ? nullptr : fdopendir(fd);
    if (dir == nullptr) {
      int err = errno;
      if (fd >= 0) close(fd);
      fuse_reply_err(req, err);
      return;
    }
    while (dirent* d = readdir(dir)) {
      std::string name = d->d_name;
      if (name == "." || name == ".." || Hidden(ino, name)) continue;
      listing->entries.push_back({name, static_cast<mode_t>(DTTOIF(d->d_type)), d->d_ino});
    }
    closedir(dir);
  }
  fi->fh = reinterpret_cast<uint64_t>(listing.release());
  fuse_reply_open(req, fi);
}

void ClonefsFs::ReadDir(fuse_req_t req, fuse_ino_t, size_t size, off_t offset,
                        fuse_file_info* fi) {
  const auto& listing = *reinterpret_cast<DirListing*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(offset); i < listing.entries.size(); ++i) {
    struct stat st {};
    st.st_mode = listing.entries[i].type;
    st.st_ino = listing.entries[i].ino;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used,
                                    listing.entries[i].name.c_str(), &st,
                                    static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void ClonefsFs::ReleaseDir(fuse_req_t req, fuse_file_info* fi) {
  delete reinterpret_cast<DirListing*>(fi->fh);
  fuse_reply_err(req, 0);
}

void ClonefsFs::MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Node dir;
  if (int err = CreatableIn(parent, name, &dir); err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  std::string path = JoinPath(dir.path, name);
  if (mkdirat(dir_fd_, path.c_str(), mode) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  ReplyPassthroughEntry(req, path);
}

void ClonefsFs::Unlink(fuse_req_t req, fuse_ino_t parent, const char* name, bool directory) {
  auto dir = nodes_.Get(parent);
  if (!dir) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (PresentedChild(parent, name)) {
    fuse_reply_err(req, EPERM);  // a clone's disks are removed with clonectl, not rm
    return;
  }
  if (dir_fd_ < 0 || vm_.read_only()) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (Hidden(parent, name)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  std::string path = JoinPath(dir->path, name);
  if (unlinkat(dir_fd_, path.c_str(), directory ? AT_REMOVEDIR : 0) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  nodes_.Unlinked(path);
  fuse_reply_err(req, 0);
}

void ClonefsFs::Rename(fuse_req_t req, fuse_ino_t parent, const char* name,
                       fuse_ino_t new_parent, const char* new_name, unsigned int flags) {
  auto from_dir = nodes_.Get(parent);
  auto to_dir = nodes_.Get(new_parent);
  if (!from_dir || !to_dir) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (PresentedChild(parent, name) || PresentedChild(new_parent, new_name)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (dir_fd_ < 0 || vm_.read_only()) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (Hidden(parent, name) || Hidden(new_parent, new_name)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  std::string from = JoinPath(from_dir->path, name);
  std::string to = JoinPath(to_dir->path, new_name);
  if (renameat2(dir_fd_, from.c_str(), dir_fd_, to.c_str(), flags) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  nodes_.Rename(from, to);
  fuse_reply_err(req, 0);
}

void ClonefsFs::ReadLink(fuse_req_t req, fuse_ino_t ino) {
  auto node = nodes_.Get(ino);
  if (!node || node->kind != NodeKind::kPassthrough || dir_fd_ < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  char target[PATH_MAX + 1];
  ssize_t n = readlinkat(dir_fd_, node->path.c_str(), target, PATH_MAX);
  if (n < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  target[n] = '\0';
  fuse_reply_readlink(req, target);
}

void ClonefsFs::StatFs(fuse_req_t req, fuse_ino_t) {
  // The space the clone's writes can take: the file system holding its delta files.
  struct statvfs st {};
  if (dir_fd_ >= 0 ? fstatvfs(dir_fd_, &st) != 0 : statvfs("/", &st) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  if (dir_fd_ < 0) st.f_bfree = st.f_bavail = 0;  // read-only: nothing can be written
  fuse_reply_statfs(req, &st);
}

}  // namespace clonefs
