// SPDX-License-Identifier: Apache-2.0
#include "common/memory_storage.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace common {
namespace {

using Op = MemoryStorage::Op;

class MemoryFile final : public File {
 public:
  MemoryFile(const MemoryStorage& storage, std::string path,
             std::shared_ptr<MemoryStorage::Node> node, bool writable)
      : File(std::move(path)), storage_(storage), node_(std::move(node)), writable_(writable) {}

  Result<size_t> ReadAt(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    std::lock_guard lock(node_->mutex);
    const auto& data = node_->data;
    if (offset_bytes >= data.size()) return size_t{0};
    size_t n = std::min<uint64_t>(dst.size(), data.size() - offset_bytes);
    if (n > 0) std::memcpy(dst.data(), data.data() + offset_bytes, n);
    return n;
  }

  Status WriteAt(uint64_t offset_bytes, std::span<const std::byte> src) override {
    if (!writable_) return Error(EBADF, "{}: write at byte {}: file is read-only", path(), offset_bytes);
    BOOST_OUTCOME_TRYV(storage_.CheckFault(Op::kWrite, path()));
    std::lock_guard lock(node_->mutex);
    auto& data = node_->data;
    if (offset_bytes + src.size() > data.size()) data.resize(offset_bytes + src.size());
    if (!src.empty()) std::memcpy(data.data() + offset_bytes, src.data(), src.size());
    ++node_->mtime_ns;
    return Status::Ok();
  }

  Result<uint64_t> Size() const override {
    std::lock_guard lock(node_->mutex);
    return static_cast<uint64_t>(node_->data.size());
  }

  Status Truncate(uint64_t size_bytes) override {
    if (!writable_) return Error(EBADF, "{}: truncate: file is read-only", path());
    BOOST_OUTCOME_TRYV(storage_.CheckFault(Op::kTruncate, path()));
    std::lock_guard lock(node_->mutex);
    node_->data.resize(size_bytes);
    ++node_->mtime_ns;
    return Status::Ok();
  }

  Status Sync() override {
    BOOST_OUTCOME_TRYV(storage_.CheckFault(Op::kSync, path()));
    std::lock_guard lock(node_->mutex);
    node_->durable = node_->data;
    return Status::Ok();
  }

  Status PunchHole(uint64_t offset_bytes, uint64_t length_bytes) override {
    if (!writable_) return Error(EBADF, "{}: punch hole: file is read-only", path());
    BOOST_OUTCOME_TRYV(storage_.CheckFault(Op::kPunchHole, path()));
    std::lock_guard lock(node_->mutex);
    auto& data = node_->data;
    if (offset_bytes < data.size()) {
      size_t n = std::min<uint64_t>(length_bytes, data.size() - offset_bytes);
      std::memset(data.data() + offset_bytes, 0, n);
    }
    ++node_->mtime_ns;
    return Status::Ok();
  }

 private:
  const MemoryStorage& storage_;
  std::shared_ptr<MemoryStorage::Node> node_;
  bool writable_;
};

class MemoryMappedFile final : public MappedFile {
 public:
  MemoryMappedFile(const MemoryStorage& storage, std::string path,
                   std::shared_ptr<MemoryStorage::Node> node)
      : storage_(storage), path_(std::move(path)), node_(std::move(node)) {}
  const std::string& path() const override { return path_; }
  // The node's bytes themselves, as a shared mapping would be; the size is fixed while
  // mapped, so the span stays valid.
  std::span<std::byte> bytes() override { return node_->data; }
  // Makes the covering 4 KiB pages durable, as msync does.
  Status Flush(uint64_t offset_bytes, uint64_t length_bytes) override {
    BOOST_OUTCOME_TRYV(storage_.CheckFault(Op::kMapFlush, path_));
    std::lock_guard lock(node_->mutex);
    auto& data = node_->data;
    auto& durable = node_->durable;
    if (durable.size() != data.size()) durable.resize(data.size());
    uint64_t begin = offset_bytes / 4096 * 4096;
    uint64_t end = std::min<uint64_t>(data.size(), (offset_bytes + length_bytes + 4095) / 4096 * 4096);
    if (begin < end) std::memcpy(durable.data() + begin, data.data() + begin, end - begin);
    return Status::Ok();
  }
  // Memory has nothing to allocate; the fault hook can still fail it (a full disk).
  Status Reserve(uint64_t, uint64_t) override {
    return storage_.CheckFault(Op::kMapReserve, path_);
  }

 private:
  const MemoryStorage& storage_;
  std::string path_;
  std::shared_ptr<MemoryStorage::Node> node_;
};

std::vector<std::byte> ToBytes(std::string_view s) {
  const auto* bytes = reinterpret_cast<const std::byte*>(s.data());
  return std::vector<std::byte>(bytes, bytes + s.size());
}

}  // namespace

void MemoryStorage::SetFile(const std::string& path, std::vector<std::byte> contents) {
  std::lock_guard lock(mutex_);
  auto node = std::make_shared<Node>();
  node->data = std::move(contents);
  node->durable = node->data;
  node->inode = next_inode_++;
  files_[path] = std::move(node);
}

void MemoryStorage::SetFile(const std::string& path, std::string_view contents) {
  SetFile(path, ToBytes(contents));
}

std::optional<std::vector<std::byte>> MemoryStorage::GetFile(const std::string& path) const {
  std::lock_guard lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
  std::lock_guard node_lock(it->second->mutex);
  return it->second->data;
}

Result<std::unique_ptr<File>> MemoryStorage::Open(const std::string& path, OpenMode mode) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status::FromErrno(ENOENT, path);
  return std::unique_ptr<File>(
      new MemoryFile(*this, path, it->second, mode == OpenMode::kReadWrite));
}

Result<std::unique_ptr<File>> MemoryStorage::CreateExclusive(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (files_.count(path)) return Status::FromErrno(EEXIST, path);
  auto node = std::make_shared<Node>();
  node->inode = next_inode_++;
  files_[path] = node;
  return std::unique_ptr<File>(new MemoryFile(*this, path, std::move(node), true));
}

Result<FileInfo> MemoryStorage::Stat(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (auto dir = directories_.find(path); dir != directories_.end()) {
    FileInfo info;
    info.mode = S_IFDIR | dir->second;
    info.is_directory = true;
    return info;
  }
  auto it = files_.find(path);
  if (it == files_.end()) return Status::FromErrno(ENOENT, path);
  std::lock_guard node_lock(it->second->mutex);
  FileInfo info;
  info.size_bytes = it->second->data.size();
  info.mtime_ns = it->second->mtime_ns;
  info.inode = it->second->inode;
  info.mode = S_IFREG | it->second->mode;
  info.is_regular = true;
  info.allocated_bytes = it->second->data.size();
  return info;
}

Status MemoryStorage::Rename(const std::string& from, const std::string& to, bool no_replace) {
  std::lock_guard lock(mutex_);
  if (directories_.count(from)) {
    // Moves the directory and everything under it.
    if (files_.count(to) || directories_.count(to)) return Status::FromErrno(EEXIST, to);
    const std::string prefix = from + "/";
    std::map<std::string, uint32_t> dirs;
    for (auto& [p, m] : directories_) {
      dirs[p == from ? to : p.rfind(prefix, 0) == 0 ? to + p.substr(from.size()) : p] = m;
    }
    directories_ = std::move(dirs);
    std::map<std::string, std::shared_ptr<Node>> files;
    for (auto& [p, n] : files_) files[p.rfind(prefix, 0) == 0 ? to + p.substr(from.size()) : p] = n;
    files_ = std::move(files);
    return Status::Ok();
  }
  auto it = files_.find(from);
  if (it == files_.end()) return Status::FromErrno(ENOENT, from);
  if (no_replace && files_.count(to)) return Status::FromErrno(EEXIST, to);
  auto node = it->second;
  files_.erase(it);
  files_[to] = std::move(node);
  return Status::Ok();
}

Result<std::unique_ptr<MappedFile>> MemoryStorage::MapFile(const std::string& path,
                                                           OpenMode /*mode*/) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status::FromErrno(ENOENT, path);
  if (it->second->data.empty()) return Error(EINVAL, "{}: map: file is empty", path);
  return std::unique_ptr<MappedFile>(new MemoryMappedFile(*this, path, it->second));
}

Status MemoryStorage::Remove(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (files_.erase(path) == 0) return Status::FromErrno(ENOENT, path);
  return Status::Ok();
}

}  // namespace common

namespace common {

void MemoryStorage::SetFaultHook(FaultHook hook) {
  std::lock_guard lock(hook_mutex_);
  hook_ = std::move(hook);
}

Status MemoryStorage::CheckFault(Op op, const std::string& path) const {
  std::lock_guard lock(hook_mutex_);
  return hook_ ? hook_(op, path) : Status::Ok();
}

void MemoryStorage::Crash(CrashMode mode, uint32_t seed) {
  std::mt19937 random(seed);
  std::lock_guard lock(mutex_);
  for (auto& [path, node] : files_) {
    std::lock_guard node_lock(node->mutex);
    switch (mode) {
      case CrashMode::kLoseUnsynced:
        node->data = node->durable;
        break;
      case CrashMode::kKeepAll:
        node->durable = node->data;
        break;
      case CrashMode::kTornPages: {
        auto& data = node->data;
        auto& durable = node->durable;
        size_t size = std::max(data.size(), durable.size());
        data.resize(size);
        durable.resize(size);
        for (size_t page = 0; page < size; page += 4096) {
          size_t n = std::min<size_t>(4096, size - page);
          if (std::memcmp(data.data() + page, durable.data() + page, n) == 0) continue;
          if (random() % 2) {
            std::memcpy(durable.data() + page, data.data() + page, n);
          } else {
            std::memcpy(data.data() + page, durable.data() + page, n);
          }
        }
        break;
      }
    }
  }
}

}  // namespace common

namespace common {

Status MemoryStorage::CreateDirectory(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (files_.count(path) || directories_.count(path)) return Status::FromErrno(EEXIST, path);
  directories_[path] = 0755;
  return Status::Ok();
}

Status MemoryStorage::RemoveDirectory(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (!directories_.count(path)) return Status::FromErrno(ENOENT, path);
  const std::string prefix = path + "/";
  for (const auto& [p, n] : files_) {
    if (p.rfind(prefix, 0) == 0) return Status::FromErrno(ENOTEMPTY, path);
  }
  for (const auto& [p, m] : directories_) {
    if (p.rfind(prefix, 0) == 0) return Status::FromErrno(ENOTEMPTY, path);
  }
  directories_.erase(path);
  return Status::Ok();
}

Result<std::vector<std::string>> MemoryStorage::ListDirectory(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (!directories_.count(path)) return Status::FromErrno(ENOENT, path);
  const std::string prefix = path + "/";
  std::vector<std::string> names;
  auto add = [&](const std::string& p) {
    if (p.rfind(prefix, 0) == 0 && p.find('/', prefix.size()) == std::string::npos) {
      names.push_back(p.substr(prefix.size()));
    }
  };
  for (const auto& [p, n] : files_) add(p);
  for (const auto& [p, m] : directories_) add(p);
  std::sort(names.begin(), names.end());
  return names;
}

Status MemoryStorage::SyncDirectory(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (!path.empty() && path != "/" && !directories_.count(path)) {
    return Status::FromErrno(ENOENT, path);
  }
  return Status::Ok();
}

Status MemoryStorage::SetMode(const std::string& path, uint32_t mode) {
  std::lock_guard lock(mutex_);
  if (auto dir = directories_.find(path); dir != directories_.end()) {
    dir->second = mode & 07777;
    return Status::Ok();
  }
  auto it = files_.find(path);
  if (it == files_.end()) return Status::FromErrno(ENOENT, path);
  it->second->mode = mode & 07777;
  return Status::Ok();
}

}  // namespace common
