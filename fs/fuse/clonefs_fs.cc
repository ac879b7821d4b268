// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/clonefs_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <spdlog/spdlog.h>

namespace clonefs {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

timespec ToTimespec(int64_t ns) { return timespec{ns / 1000000000, ns % 1000000000}; }

}  // namespace

ClonefsFs::ClonefsFs(engine::MountedVm& vm, int vm_dir_fd, FsOptions options)
    : vm_(vm), dir_fd_(vm_dir_fd), options_(options), mount_time_ns_(NowNs()) {
  for (size_t i = 0; i < vm_.disks().size(); ++i) {
    const engine::PresentedDisk& d = vm_.disks()[i];
    std::string descriptor_path;
    if (!d.descriptor_path.empty()) {
      // Relative to the VM directory, so the descriptor is reached through dir_fd_ too.
      descriptor_path = d.descriptor_path.substr(vm_.vm_dir().size() + 1);
    }
    presented_[d.name + ".vmdk"] =
        nodes_.AddPresented(Node{NodeKind::kDescriptor, descriptor_path, static_cast<int>(i)});
    presented_[d.name + "-flat.vmdk"] =
        nodes_.AddPresented(Node{NodeKind::kFlat, "", static_cast<int>(i)});
    auto state = std::make_unique<FlatState>();
    state->mode = d.disk->read_only() ? 0444 : 0644;
    state->mtime_ns = mount_time_ns_;
    flat_state_.push_back(std::move(state));
  }
}

ClonefsFs::~ClonefsFs() { StopFlushTimer(); }

int ClonefsFs::Stat(const Node& node, fuse_ino_t ino, struct stat* st) {
  *st = {};
  if (node.kind == NodeKind::kFlat) {
    const engine::VirtualDisk& disk = DiskOf(node.disk);
    const FlatState& state = *flat_state_[node.disk];
    st->st_mode = S_IFREG | state.mode;
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(disk.capacity_bytes());
    st->st_blocks = static_cast<blkcnt_t>(disk.OwnBytes() / 512);
    st->st_blksize = 64 * 1024;
    st->st_atim = ToTimespec(mount_time_ns_);
    st->st_mtim = st->st_ctim = ToTimespec(state.mtime_ns.load());
  } else if (node.kind == NodeKind::kDescriptor && node.path.empty()) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(vm_.disks()[node.disk].descriptor_text.size());
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_atim = st->st_mtim = st->st_ctim = ToTimespec(mount_time_ns_);
  } else if (dir_fd_ < 0) {  // the root of a plain VMDK's mount: nothing to pass through
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    st->st_atim = st->st_mtim = st->st_ctim = ToTimespec(mount_time_ns_);
  } else if (fstatat(dir_fd_, node.path.c_str(), st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno;
  }
  if (node.kind != NodeKind::kPassthrough || dir_fd_ < 0) {
    // Presented files belong to whoever owns the VM directory.
    struct stat dir {};
    if (dir_fd_ >= 0 && fstat(dir_fd_, &dir) == 0) {
      st->st_uid = dir.st_uid;
      st->st_gid = dir.st_gid;
    } else {
      st->st_uid = getuid();
      st->st_gid = getgid();
    }
  }
  if (vm_.read_only()) st->st_mode &= ~mode_t{0222};
  st->st_ino = ino;
  return 0;
}

std::optional<fuse_ino_t> ClonefsFs::PresentedChild(fuse_ino_t parent,
                                                    const std::string& name) const {
  if (parent != FUSE_ROOT_ID) return std::nullopt;
  auto found = presented_.find(name);
  if (found == presented_.end()) return std::nullopt;
  return found->second;
}

bool ClonefsFs::Hidden(fuse_ino_t parent, const std::string& name) const {
  if (parent != FUSE_ROOT_ID) return false;
  const auto& files = vm_.hidden_files();
  return name == engine::MountedVm::hidden_name() || presented_.count(name) > 0 ||
         std::find(files.begin(), files.end(), name) != files.end();
}

int ClonefsFs::CreatableIn(fuse_ino_t parent, const std::string& name, Node* dir) const {
  auto node = nodes_.Get(parent);
  if (!node || node->kind != NodeKind::kPassthrough) return ENOENT;
  if (dir_fd_ < 0 || vm_.read_only()) return EROFS;
  if (PresentedChild(parent, name)) return EEXIST;
  if (Hidden(parent, name)) return EPERM;
  *dir = *node;
  return 0;
}

void ClonefsFs::MarkWritten(int disk) {
  flat_state_[disk]->mtime_ns = NowNs();
  flat_state_[disk]->dirty = true;
}

int ClonefsFs::FlushDisk(int disk) {
  flat_state_[disk]->dirty = false;
  common::Status s = DiskOf(disk).Flush();
  if (!s.ok()) {
    flat_state_[disk]->dirty = true;
    spdlog::error("{}-flat.vmdk: flush failed: {}", vm_.disks()[disk].name, s.message());
    return s.code();
  }
  return 0;
}

void ClonefsFs::StartFlushTimer() {
  flush_thread_ = std::thread([this] { FlushLoop(); });
}

void ClonefsFs::StopFlushTimer() {
  {
    std::lock_guard lock(flush_mutex_);
    stop_flushing_ = true;
  }
  flush_wake_.notify_all();
  if (flush_thread_.joinable()) flush_thread_.join();
}

// The bounded interval of the durability contract: writes the guest never fsyncs are
// persisted within flush_interval (plus the time one flush takes).
void ClonefsFs::FlushLoop() {
  std::unique_lock lock(flush_mutex_);
  while (!flush_wake_.wait_for(lock, options_.flush_interval, [this] { return stop_flushing_; })) {
    lock.unlock();
    for (size_t i = 0; i < flat_state_.size(); ++i) {
      if (flat_state_[i]->dirty.load()) FlushDisk(static_cast<int>(i));
    }
    lock.lock();
  }
}

}  // namespace clonefs
