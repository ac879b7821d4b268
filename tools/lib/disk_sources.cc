// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/disk_sources.h"

namespace tools {

common::Result<uint64_t> VmdkDiskSource::Next(uint64_t offset_bytes, bool want_data) const {
  const uint64_t capacity = disk_.capacity_bytes();
  while (offset_bytes < capacity) {
    BOOST_OUTCOME_TRY(run, disk_.Map(offset_bytes, capacity - offset_bytes));
    if ((run.state == vmdk::BlockState::kData) == want_data) return offset_bytes;
    offset_bytes += run.length_bytes;
  }
  return capacity;
}

common::Result<uint64_t> VmdkDiskSource::NextData(uint64_t offset_bytes) const {
  return Next(offset_bytes, true);
}

common::Result<uint64_t> VmdkDiskSource::NextHole(uint64_t offset_bytes) const {
  return Next(offset_bytes, false);
}

}  // namespace tools
