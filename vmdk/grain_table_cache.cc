// SPDX-License-Identifier: Apache-2.0
#include "vmdk/grain_table_cache.h"

namespace vmdk {

common::Result<std::shared_ptr<const GrainTable>> GrainTableCache::Get(uint64_t gd_index,
                                                                       const Loader& load) {
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(gd_index);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  BOOST_OUTCOME_TRY(table, load(gd_index));
  auto shared = std::make_shared<const GrainTable>(std::move(table));
  std::lock_guard lock(mutex_);
  auto it = index_.find(gd_index);
  if (it != index_.end()) return it->second->second;
  lru_.emplace_front(gd_index, shared);
  index_[gd_index] = lru_.begin();
  if (lru_.size() > max_tables_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return shared;
}

}  // namespace vmdk
