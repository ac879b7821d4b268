// SPDX-License-Identifier: Apache-2.0
#pragma once

// The crash test's model (tests/engine/crash_test.cc): a pattern that names every word's
// block, version and offset; lower layers holding version 0 of it; a seeded workload; and
// what each block may read after a power cut, by crash mode (docs/delta-format.md).

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/memory_storage.h"
#include "fs/engine/delta_layer.h"
#include "fs/engine/lower_layers.h"

namespace engine::crash {

using common::MemoryStorage;
using CrashMode = MemoryStorage::CrashMode;
using Bytes = std::vector<std::byte>;

inline constexpr uint64_t kBlocks = 65;
inline constexpr uint64_t kCapacity = 64 * kBlockBytes + 1024;  // the last block is short
inline const DeltaPaths kPaths{"/clone/.clonefs/D.delta", "/clone/.clonefs/D.map"};

// Every 8-byte word the test stores names its block, its version (0: the lower layers;
// n: the workload's n-th operation) and its offset in the block, so a word read from the
// wrong block, version or place is told apart from the right one.
inline uint64_t PatternWord(uint64_t block, uint64_t version, uint64_t in_block) {
  return uint64_t{0xC1} << 56 | block << 40 | version << 16 | in_block;
}
inline void FillPattern(std::span<std::byte> dst, uint64_t offset, uint64_t version) {
  for (size_t i = 0; i < dst.size(); ++i) {
    uint64_t p = offset + i;
    uint64_t word = PatternWord(p / kBlockBytes, version, p % kBlockBytes / 8 * 8);
    dst[i] = std::byte(static_cast<uint8_t>(word >> (p % 8 * 8)));
  }
}
inline std::string DescribeWord(std::span<const std::byte> image, uint64_t at) {
  uint64_t word = 0;
  for (int i = 7; i >= 0; --i) word = word << 8 | std::to_integer<uint64_t>(image[at + i]);
  if (word == 0) return "zeros";
  uint64_t block = word >> 40 & 0xffff, version = word >> 16 & 0xffffff, in = word & 0xffff;
  if (word != PatternWord(block, version, in)) return fmt::format("{:#018x}", word);
  return fmt::format("{} of block {} at +{}", version == 0 ? "lower" : fmt::format("v{}", version),
                     block, in);
}

// The layers below: version 0 of the pattern everywhere.
class PatternLower final : public LowerLayers {
 public:
  uint64_t capacity_bytes() const override { return kCapacity; }
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    if (offset_bytes > kCapacity || dst.size() > kCapacity - offset_bytes) {
      return common::Error(EINVAL, "pattern lower: read outside the disk");
    }
    FillPattern(dst, offset_bytes, 0);
    return Status::Ok();
  }
  Result<Run> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const override {
    return Run{true, std::min(max_length_bytes, kCapacity - offset_bytes)};
  }
};

struct WorkOp {
  enum Kind { kWrite, kDiscard, kFlush, kClose } kind = kFlush;
  uint64_t offset = 0, length = 0;
  bool durability_point() const { return kind == kFlush || kind == kClose; }
  const char* name() const {
    static constexpr const char* kNames[] = {"write", "discard", "flush", "close"};
    return kNames[kind];
  }
  std::string Describe(size_t index) const {
    if (durability_point()) return fmt::format("op {} ({})", index + 1, name());
    return fmt::format("op {} ({} {} bytes at {})", index + 1, name(), length, offset);
  }
};

// `count` operations, mostly on a few hot blocks (so blocks are written again, owned or
// not yet owned, with flushes in between), some on the short last block; then Close.
inline std::vector<WorkOp> MakeWorkload(uint32_t seed, size_t count) {
  std::mt19937 rng(seed);
  auto pick = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  std::vector<WorkOp> ops;
  while (ops.size() < count) {
    uint64_t start = (pick(0, 5) == 0 ? pick(61, kBlocks - 1) : pick(0, 9)) * kBlockBytes;
    uint64_t room = kCapacity - start, block_len = std::min<uint64_t>(room, kBlockBytes);
    WorkOp op{WorkOp::kWrite, start, 0};
    const uint64_t choice = pick(0, 9);
    switch (choice) {
      case 0:
      case 1:  // whole blocks
        op.length = std::min(room, pick(1, 3) * kBlockBytes);
        break;
      case 2:
      case 3:  // unaligned, within one block
      case 4:  // a partial discard
        op.kind = choice == 4 ? WorkOp::kDiscard : WorkOp::kWrite;
        op.offset = start + pick(0, block_len - 1);
        op.length = pick(1, start + block_len - op.offset);
        break;
      case 5:
      case 6:  // unaligned, usually spanning blocks
        op.offset = start + pick(1, block_len - 1);
        op.length = pick(1, std::min<uint64_t>(3 * kBlockBytes, kCapacity - op.offset));
        break;
      case 7:  // whole-block discard
        op.kind = WorkOp::kDiscard;
        op.length = std::min(room, pick(1, 2) * kBlockBytes);
        break;
      default:
        op.kind = WorkOp::kFlush;
    }
    ops.push_back(op);
  }
  // An unaligned write that spans into the short last block and ends at the capacity.
  uint64_t at = 63 * kBlockBytes + 100;
  ops.insert(ops.begin() + static_cast<ptrdiff_t>(count / 2), {WorkOp::kWrite, at, kCapacity - at});
  ops.push_back({WorkOp::kClose});
  return ops;
}

// The disk as the workload sees it, at the last completed flush and now.
struct Model {
  Bytes flushed, current;
  std::vector<bool> owned_flushed = std::vector<bool>(kBlocks), owned = owned_flushed;
  Model() : flushed(kCapacity) {
    FillPattern(flushed, 0, 0);
    current = flushed;
  }
  void Apply(const WorkOp& op, uint64_t version) {
    if (op.durability_point()) return;
    auto range = std::span(current).subspan(op.offset, op.length);
    if (op.kind == WorkOp::kWrite) {
      FillPattern(range, op.offset, version);
    } else {
      std::fill(range.begin(), range.end(), std::byte{0});
    }
    for (uint64_t b = op.offset / kBlockBytes; b <= (op.offset + op.length - 1) / kBlockBytes;
         ++b) {
      owned[b] = true;
    }
  }
  void Flushed() {
    flushed = current;
    owned_flushed = owned;
  }
};

struct RunResult {
  Model model;
  std::optional<size_t> failed;  // the operation the cut failed
  uint64_t done_in_failed = 0;   // its storage operations that went through
  Bytes before_failed;           // the disk before it
};

// What block b may read after the crash, by crash mode (docs/delta-format.md, "Write
// ordering"). Bits reach the mapped bitmap only in a flush, after the data file's sync
// and the reservation of the bitmap pages they land in, and are durable once those pages
// are msync'ed; so a flush (or Close) that the cut stopped after `done_in_failed` of its
// storage operations has synced the data from 1 on, stored the bits in the mapping from
// 2 on, and made them durable from 3 on (65 blocks: one bitmap page, one reservation,
// one msync).
// kLoseUnsynced keeps exactly the durable files; kKeepAll exactly the current ones (the
// cut write may or may not have reached a block); kTornPages each page of each file old
// or new: either of those, a subset of the states the block passed through since the
// last completed flush.
inline std::set<const Bytes*> Allowed(const RunResult& r, const std::vector<WorkOp>& ops,
                                      uint64_t b, CrashMode mode) {
  const Model& m = r.model;
  const WorkOp* failed = r.failed ? &ops[*r.failed] : nullptr;
  const bool in_flush = failed && failed->durability_point();
  const bool synced = in_flush && r.done_in_failed >= 1;
  const bool bits_stored = in_flush && r.done_in_failed >= 2;
  const bool bitmap_durable = in_flush && r.done_in_failed >= 3;
  const bool touched = failed && !in_flush && b >= failed->offset / kBlockBytes &&
                       b <= (failed->offset + failed->length - 1) / kBlockBytes;
  std::set<const Bytes*> lose, keep;  // kLoseUnsynced, kKeepAll
  if (m.owned_flushed[b]) {
    lose = {synced ? &m.current : &m.flushed};
    keep = {&m.current};
    if (touched) keep.insert(&r.before_failed);  // the cut op may not have written it
  } else {  // read from below unless the bit got to disk; then the data is synced
    lose = {bitmap_durable && m.owned[b] ? &m.current : &m.flushed};
    keep = {bits_stored && m.owned[b] ? &m.current : &m.flushed};
  }
  if (mode == CrashMode::kLoseUnsynced) return lose;
  if (mode == CrashMode::kKeepAll) return keep;
  keep.insert(lose.begin(), lose.end());  // each page old or new: data and bitmap
  return keep;
}

}  // namespace engine::crash
