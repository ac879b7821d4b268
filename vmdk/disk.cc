// SPDX-License-Identifier: Apache-2.0
#include "vmdk/disk.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

namespace vmdk {
namespace {

namespace fs = std::filesystem;
using common::Error;

// Where a child's parentFileNameHint points: relative hints are relative to the child's
// directory; an absolute hint that does not exist here (another host's path, a Windows
// path) falls back to its base name next to the child, as VMware and QEMU users expect
// when a VM folder has been moved.
std::string ResolveParentPath(common::Storage& storage, const std::string& child_path,
                              const std::string& hint) {
  fs::path child_dir = fs::path(child_path).parent_path();
  bool windows = hint.find('\\') != std::string::npos ||
                 (hint.size() > 2 && hint[1] == ':' && std::isalpha(uint8_t(hint[0])));
  if (!windows) {
    fs::path p(hint);
    if (p.is_relative()) return (child_dir / p).string();
    if (storage.Stat(hint)) return hint;
  }
  std::string base = hint.substr(hint.find_last_of("/\\") + 1);
  return (child_dir / base).string();
}

std::string CidText(std::optional<uint32_t> cid) {
  return cid ? fmt::format("{:08x}", *cid) : std::string("(none)");
}

}  // namespace

Result<std::unique_ptr<Disk>> Disk::Open(common::Storage& storage, const std::string& path) {
  std::unique_ptr<Disk> disk(new Disk());
  std::set<std::pair<uint64_t, uint64_t>> seen;  // (device, inode) of each link opened
  std::string next = path;
  while (true) {
    BOOST_OUTCOME_TRY(info, storage.Stat(next));
    if (!seen.insert({info.device, info.inode}).second) {
      return Error(ELOOP, "{}: parent chain loops back to {}", disk->links_.back()->path(), next);
    }
    if (disk->links_.size() == kMaxChainDepth) {
      return Error(ELOOP, "{}: parent chain is deeper than {} links", path, kMaxChainDepth);
    }
    BOOST_OUTCOME_TRY(link, Link::Open(storage, next));
    if (!disk->links_.empty()) {
      const Link& child = *disk->links_.back();
      uint32_t expected = child.descriptor().parent_cid();
      std::optional<uint32_t> actual = link->descriptor().cid();
      if (!actual || *actual != expected) {
        return Error(ESTALE, "{}: CID is {} but {} expects parentCID {:08x}: the parent was "
                     "modified after the child was created", next, CidText(actual),
                     child.path(), expected);
      }
      if (link->capacity_bytes() != child.capacity_bytes()) {
        return Error(EINVAL, "{}: capacity {} bytes differs from its child {} ({} bytes)", next,
                     link->capacity_bytes(), child.path(), child.capacity_bytes());
      }
    }
    std::optional<std::string> hint = link->descriptor().parent_file_name_hint();
    uint32_t parent_cid = link->descriptor().parent_cid();
    std::string link_path = link->path();
    disk->links_.push_back(std::move(link));
    if (!hint || hint->empty()) {
      if (parent_cid != kNoParentCid) {
        return Error(EINVAL, "{}: delta link (parentCID {:08x}) without parentFileNameHint",
                     link_path, parent_cid);
      }
      break;
    }
    next = ResolveParentPath(storage, link_path, *hint);
  }
  return disk;
}

Result<ChainMapping> Disk::Map(uint64_t offset_bytes, uint64_t max_length_bytes) const {
  uint64_t length = max_length_bytes;
  for (size_t i = 0; i < links_.size(); ++i) {
    BOOST_OUTCOME_TRY(m, links_[i]->Map(offset_bytes, length));
    if (m.state != BlockState::kUnallocated) {
      return ChainMapping{m.state, m.length_bytes, static_cast<int>(i)};
    }
    length = m.length_bytes;  // the run below must fit inside this link's hole
  }
  return ChainMapping{BlockState::kUnallocated, length, -1};
}

Status Disk::Read(uint64_t offset_bytes, std::span<std::byte> dst) const {
  if (offset_bytes > capacity_bytes() || dst.size() > capacity_bytes() - offset_bytes) {
    return Error(EINVAL, "{}: read of {} bytes at byte {} outside the disk ({} bytes)",
                 links_.front()->path(), dst.size(), offset_bytes, capacity_bytes());
  }
  if (dst.empty()) return Status::Ok();
  return ReadFromLink(0, offset_bytes, dst);
}

Status Disk::ReadFromLink(size_t link_index, uint64_t offset_bytes,
                          std::span<std::byte> dst) const {
  const Link& link = *links_[link_index];
  size_t done = 0;
  while (done < dst.size()) {
    BOOST_OUTCOME_TRY(m, link.Map(offset_bytes + done, dst.size() - done));
    auto part = dst.subspan(done, m.length_bytes);
    switch (m.state) {
      case BlockState::kData: {
        BOOST_OUTCOME_TRYV(link.Read(offset_bytes + done, part));
        break;
      }
      case BlockState::kZero:
        std::memset(part.data(), 0, part.size());
        break;
      case BlockState::kUnallocated: {
        if (link_index + 1 < links_.size()) {
          BOOST_OUTCOME_TRYV(ReadFromLink(link_index + 1, offset_bytes + done, part));
        } else {
          std::memset(part.data(), 0, part.size());
        }
        break;
      }
    }
    done += m.length_bytes;
  }
  return Status::Ok();
}

}  // namespace vmdk
