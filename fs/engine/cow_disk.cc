// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/cow_disk.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "fs/engine/layer_stack.h"

namespace engine {
namespace {

using common::Error;

Status CheckRange(uint64_t capacity, uint64_t offset_bytes, uint64_t length) {
  if (offset_bytes > capacity || length > capacity - offset_bytes) {
    return Error(EINVAL, "range of {} bytes at byte {} lies outside the disk ({} bytes)", length,
                 offset_bytes, capacity);
  }
  return Status::Ok();
}

// Locks the stripes of blocks [first, first + count) in ascending stripe order.
class StripeLocks {
 public:
  template <size_t N>
  StripeLocks(std::array<std::mutex, N>& locks, uint64_t first, uint64_t count) {
    std::vector<size_t> stripes;
    if (count >= N) {
      for (size_t i = 0; i < N; ++i) stripes.push_back(i);
    } else {
      for (uint64_t b = first; b < first + count; ++b) stripes.push_back(b % N);
      std::sort(stripes.begin(), stripes.end());
      stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    }
    for (size_t s : stripes) {
      locks[s].lock();
      held_.push_back(&locks[s]);
    }
  }
  ~StripeLocks() {
    for (auto it = held_.rbegin(); it != held_.rend(); ++it) (*it)->unlock();
  }

 private:
  std::vector<std::mutex*> held_;
};

}  // namespace

Result<std::unique_ptr<CowDisk>> CowDisk::Create(std::unique_ptr<LowerLayers> lower,
                                                 std::unique_ptr<DeltaLayer> delta) {
  if (lower->capacity_bytes() != delta->capacity_bytes()) {
    return Error(EINVAL, "delta layer capacity {} bytes differs from its parent's {} bytes",
                 delta->capacity_bytes(), lower->capacity_bytes());
  }
  return std::unique_ptr<CowDisk>(new CowDisk(std::move(lower), std::move(delta)));
}

Status CowDisk::Read(uint64_t offset_bytes, std::span<std::byte> dst) const {
  BOOST_OUTCOME_TRYV(CheckRange(capacity_bytes(), offset_bytes, dst.size()));
  const uint64_t end = offset_bytes + dst.size();
  uint64_t pos = offset_bytes;
  while (pos < end) {
    uint64_t block = pos / kBlockBytes;
    uint64_t last_block = (end - 1) / kBlockBytes;
    bool owned = false;
    uint64_t run = delta_->RunLength(block, last_block - block + 1, &owned);
    uint64_t run_end = std::min(end, (block + run) * kBlockBytes);
    auto part = dst.subspan(pos - offset_bytes, run_end - pos);
    if (owned) {
      BOOST_OUTCOME_TRYV(delta_->ReadData(pos, part));
    } else {
      BOOST_OUTCOME_TRYV(lower_->Read(pos, part));
    }
    pos = run_end;
  }
  return Status::Ok();
}

Status CowDisk::Write(uint64_t offset_bytes, std::span<const std::byte> src) {
  BOOST_OUTCOME_TRYV(CheckRange(capacity_bytes(), offset_bytes, src.size()));
  if (!delta_->writable()) return Error(EROFS, "disk is read-only");
  const uint64_t end = offset_bytes + src.size();
  uint64_t pos = offset_bytes;
  while (pos < end) {
    uint64_t block = pos / kBlockBytes;
    uint64_t in_block = pos % kBlockBytes;
    uint64_t block_len = delta_->BlockLength(block);
    auto rest = src.subspan(pos - offset_bytes);
    if (in_block != 0 || end - pos < block_len) {
      uint64_t n = std::min(block_len - in_block, end - pos);
      BOOST_OUTCOME_TRYV(WritePartialBlock(block, in_block, rest.first(n)));
      pos += n;
      continue;
    }
    // Whole blocks up to `end` (the disk's last block may be short).
    uint64_t end_block = end == capacity_bytes() ? delta_->block_count() : end / kBlockBytes;
    uint64_t count = end_block - block;
    uint64_t bytes = std::min(count * kBlockBytes, capacity_bytes() - pos);
    BOOST_OUTCOME_TRYV(WriteWholeBlocks(block, count, rest.first(bytes)));
    pos += bytes;
  }
  return Status::Ok();
}

Status CowDisk::WriteWholeBlocks(uint64_t first_block, uint64_t count,
                                 std::span<const std::byte> src) {
  uint64_t block = first_block;
  while (block < first_block + count) {
    bool owned = false;
    uint64_t run = delta_->RunLength(block, first_block + count - block, &owned);
    auto part = src.subspan((block - first_block) * kBlockBytes,
                            std::min<uint64_t>(run * kBlockBytes,
                                               src.size() - (block - first_block) * kBlockBytes));
    if (owned) {
      BOOST_OUTCOME_TRYV(delta_->WriteData(block * kBlockBytes, part));
    } else {
      // Taking blocks over: hold their locks so a partial writer of one of them cannot
      // read the old contents from below and write them back over ours.
      StripeLocks locks(block_locks_, block, run);
      BOOST_OUTCOME_TRYV(delta_->WriteData(block * kBlockBytes, part));
      delta_->MarkOwned(block, run);  // only after the data is in the delta file
    }
    block += run;
  }
  return Status::Ok();
}

Status CowDisk::WritePartialBlock(uint64_t block, uint64_t in_block,
                                  std::span<const std::byte> src) {
  const uint64_t start = block * kBlockBytes;
  if (delta_->IsOwned(block)) return delta_->WriteData(start + in_block, src);
  std::lock_guard lock(BlockLock(block));
  if (delta_->IsOwned(block)) return delta_->WriteData(start + in_block, src);
  // Copy-on-write: the rest of the block comes from below (at most one block).
  std::array<std::byte, kBlockBytes> buffer;
  auto whole = std::span(buffer).first(delta_->BlockLength(block));
  BOOST_OUTCOME_TRYV(lower_->Read(start, whole));
  std::memcpy(whole.data() + in_block, src.data(), src.size());
  BOOST_OUTCOME_TRYV(delta_->WriteData(start, whole));
  delta_->MarkOwned(block, 1);
  return Status::Ok();
}

Status CowDisk::Discard(uint64_t offset_bytes, uint64_t length_bytes) {
  BOOST_OUTCOME_TRYV(CheckRange(capacity_bytes(), offset_bytes, length_bytes));
  if (!delta_->writable()) return Error(EROFS, "disk is read-only");
  static constexpr std::array<std::byte, kBlockBytes> kZeros{};
  const uint64_t end = offset_bytes + length_bytes;
  uint64_t pos = offset_bytes;
  while (pos < end) {
    uint64_t block = pos / kBlockBytes;
    uint64_t in_block = pos % kBlockBytes;
    uint64_t block_len = delta_->BlockLength(block);
    if (in_block != 0 || end - pos < block_len) {
      uint64_t n = std::min(block_len - in_block, end - pos);
      BOOST_OUTCOME_TRYV(WritePartialBlock(block, in_block, std::span(kZeros).first(n)));
      pos += n;
      continue;
    }
    uint64_t end_block = end == capacity_bytes() ? delta_->block_count() : end / kBlockBytes;
    // Bounded batches keep the stripe locks short.
    uint64_t count = std::min<uint64_t>(end_block - block, 4096);
    uint64_t bytes = std::min(count * kBlockBytes, capacity_bytes() - pos);
    {
      StripeLocks locks(block_locks_, block, count);
      BOOST_OUTCOME_TRYV(delta_->PunchData(pos, bytes));
      delta_->MarkOwned(block, count);
    }
    pos += bytes;
  }
  return Status::Ok();
}

Result<LowerLayers::Run> CowDisk::MapMerged(uint64_t offset_bytes, uint64_t max_length_bytes) const {
  uint64_t block = offset_bytes / kBlockBytes;
  uint64_t end = std::min(capacity_bytes(), offset_bytes + max_length_bytes);
  bool owned = false;
  uint64_t run = delta_->RunLength(block, (end - 1) / kBlockBytes - block + 1, &owned);
  uint64_t run_end = std::min(end, (block + run) * kBlockBytes);
  if (!owned) return lower_->Map(offset_bytes, run_end - offset_bytes);
  return MapOwnedBlocks(*delta_, offset_bytes, run_end);
}

Result<uint64_t> CowDisk::NextData(uint64_t offset_bytes) const {
  uint64_t pos = offset_bytes;
  while (pos < capacity_bytes()) {
    BOOST_OUTCOME_TRY(run, MapMerged(pos, capacity_bytes() - pos));
    if (run.data) return pos;
    pos += run.length_bytes;
  }
  return capacity_bytes();
}

Result<uint64_t> CowDisk::NextHole(uint64_t offset_bytes) const {
  uint64_t pos = offset_bytes;
  while (pos < capacity_bytes()) {
    BOOST_OUTCOME_TRY(run, MapMerged(pos, capacity_bytes() - pos));
    if (!run.data) return pos;
    pos += run.length_bytes;
  }
  return capacity_bytes();
}

}  // namespace engine
