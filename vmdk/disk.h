// SPDX-License-Identifier: Apache-2.0
#pragma once

// A whole virtual disk: the chain of links from the one opened (top) down to its base,
// followed through parentFileNameHint with CID and capacity checks. Reads merge the
// chain: each range comes from the topmost link that maps it. Read-only; thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "common/storage.h"
#include "vmdk/link.h"

namespace vmdk {

// Longest chain followed. VMware allows 255 links (32 snapshots per VM in practice);
// anything deeper is a loop that identity checks missed or corrupt input.
inline constexpr size_t kMaxChainDepth = 255;

// A run of the merged view.
struct ChainMapping {
  BlockState state = BlockState::kUnallocated;  // kUnallocated: no link maps it (zeros)
  uint64_t length_bytes = 0;
  int link_index = -1;  // the link that maps it (0 = top), -1 when unallocated
};

class Disk {
 public:
  // Opens the link at `path` and its parents. Fails with a message naming the file and
  // the cause when a parent is missing, its CID is not the child's parentCID ("parent
  // modified since the child was created"), capacities differ, or the chain loops.
  static Result<std::unique_ptr<Disk>> Open(common::Storage& storage, const std::string& path);

  // links()[0] is the top (the file opened); links().back() is the base.
  const std::vector<std::unique_ptr<Link>>& links() const { return links_; }
  uint64_t capacity_bytes() const { return links_.front()->capacity_bytes(); }

  Result<ChainMapping> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const;
  // Reads [offset_bytes, offset_bytes + dst.size()) of the merged disk; the range must
  // lie within capacity_bytes() (EINVAL otherwise).
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const;

 private:
  Disk() = default;
  Status ReadFromLink(size_t link_index, uint64_t offset_bytes, std::span<std::byte> dst) const;

  std::vector<std::unique_ptr<Link>> links_;
};

}  // namespace vmdk
