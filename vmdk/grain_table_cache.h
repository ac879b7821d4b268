// SPDX-License-Identifier: Apache-2.0
#pragma once

// A bounded, thread-safe LRU cache of decoded grain tables, keyed by grain-directory
// index. Tables are loaded on first use, so memory stays bounded whatever the disk size
// (a 2 TiB hosted sparse disk has 65,536 tables; only the recently used ones are held).

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace vmdk {

using GrainTable = std::vector<uint32_t>;  // GTEs in native byte order

class GrainTableCache {
 public:
  explicit GrainTableCache(size_t max_tables) : max_tables_(max_tables ? max_tables : 1) {}

  using Loader = std::function<common::Result<GrainTable>(uint64_t gd_index)>;

  // The table at gd_index, loading it with `load` (outside the lock) on a miss. Two
  // threads missing the same table may both load it; the first insert wins. The
  // returned pointer stays valid however the cache evicts.
  common::Result<std::shared_ptr<const GrainTable>> Get(uint64_t gd_index, const Loader& load);

 private:
  using Entry = std::pair<uint64_t, std::shared_ptr<const GrainTable>>;
  const size_t max_tables_;
  std::mutex mutex_;  // guards lru_ and index_
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
};

}  // namespace vmdk
