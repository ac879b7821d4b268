// SPDX-License-Identifier: Apache-2.0
#pragma once

// One extent of one link: a read-only region of virtual sectors backed by a flat file, a
// sparse (KDMV/COWD) file, or nothing (ZERO). Offsets here are extent-relative bytes.
// Implementations are thread-safe: Map and Read may be called from any number of
// threads at once.

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "common/status.h"
#include "vmdk/mapping.h"

namespace vmdk {

using common::Result;
using common::Status;

// What `clonectl inspect` shows about an extent's backing format, as ordered key/value
// pairs ("format": "KDMV", "version": "1", "grain_bytes": "65536", ...).
using ExtentDetails = std::vector<std::pair<std::string, std::string>>;

class Extent {
 public:
  virtual ~Extent() = default;

  virtual uint64_t size_bytes() const = 0;

  // The state of the run that starts at offset_bytes, at most max_length_bytes long
  // (and never past size_bytes()). length_bytes is always > 0 for a valid query.
  virtual Result<Mapping> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const = 0;

  // Reads [offset_bytes, offset_bytes + dst.size()), which lies inside the extent.
  // Ranges that Map reports as kZero or kUnallocated read as zeros.
  virtual Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const = 0;

  virtual ExtentDetails Details() const = 0;
};

}  // namespace vmdk
