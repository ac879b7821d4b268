// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/read_only_disk.h"

namespace engine {

Result<uint64_t> ReadOnlyDisk::Next(uint64_t offset_bytes, bool want_data) const {
  const uint64_t capacity = capacity_bytes();
  while (offset_bytes < capacity) {
    BOOST_OUTCOME_TRY(run, lower_->Map(offset_bytes, capacity - offset_bytes));
    if (run.data == want_data) return offset_bytes;
    offset_bytes += run.length_bytes;
  }
  return capacity;
}

Result<uint64_t> ReadOnlyDisk::NextData(uint64_t offset_bytes) const {
  return Next(offset_bytes, true);
}

Result<uint64_t> ReadOnlyDisk::NextHole(uint64_t offset_bytes) const {
  return Next(offset_bytes, false);
}

}  // namespace engine
