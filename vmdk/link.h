// SPDX-License-Identifier: Apache-2.0
#pragma once

// One link of a disk chain: a descriptor and the extents it names, concatenated in
// descriptor order. Read-only; thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "common/storage.h"
#include "vmdk/descriptor.h"
#include "vmdk/extent.h"

namespace vmdk {

struct LinkExtent {
  ExtentLine line;                 // as the descriptor gives it
  std::string path;                // resolved path of its file ("" for ZERO)
  uint64_t start_bytes = 0;        // virtual offset of its first byte in the link
  std::unique_ptr<Extent> extent;  // null for NOACCESS extents
};

class Link {
 public:
  // Opens `path`: a text descriptor, or a file starting with an embedded descriptor
  // (monolithicSparse, streamOptimized). Opens every extent file and checks every
  // header, directory and table location against file sizes; reads no grain data.
  static Result<std::unique_ptr<Link>> Open(common::Storage& storage, const std::string& path);

  const std::string& path() const { return path_; }
  const Descriptor& descriptor() const { return descriptor_; }
  const std::vector<LinkExtent>& extents() const { return extents_; }
  uint64_t capacity_bytes() const { return capacity_bytes_; }
  // Anomalies that do not stop reading (header capacity differs from the extent line,
  // unclean-shutdown flag set, ...), one sentence each.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // As Extent::Map, with link-relative offsets; a run never crosses an extent boundary.
  Result<Mapping> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const;
  // As Extent::Read; may span extents. NOACCESS extents fail with EACCES.
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const;

  // Bytes this link itself maps as kData / kZero (walks the whole allocation map).
  struct Usage {
    uint64_t data_bytes = 0;
    uint64_t zero_bytes = 0;
  };
  Result<Usage> CountAllocation() const;

 private:
  Link() = default;
  size_t ExtentIndexAt(uint64_t offset_bytes) const;

  std::string path_;
  Descriptor descriptor_;
  std::vector<LinkExtent> extents_;
  uint64_t capacity_bytes_ = 0;
  std::vector<std::string> warnings_;
};

}  // namespace vmdk
