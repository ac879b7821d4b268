// SPDX-License-Identifier: Apache-2.0
#pragma once

// Lower layers for engine tests: an in-memory disk of patterned bytes with a few holes
// (zeros that Map reports as holes), counting every read so tests can check how much
// copy-on-write reads from below.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "fs/engine/lower_layers.h"

namespace engine::fakes {

// The byte a FakeLowerLayers holds at `offset` outside its holes: never zero, and
// different in every block, so a block read from the wrong place shows.
inline std::byte LowerPattern(uint64_t offset) {
  uint64_t block = offset / 4096;
  return std::byte(static_cast<uint8_t>(1 + (offset * 7 + block * 13) % 251));
}

class FakeLowerLayers final : public LowerLayers {
 public:
  struct Hole {
    uint64_t offset_bytes;
    uint64_t length_bytes;
  };

  FakeLowerLayers(uint64_t capacity_bytes, std::vector<Hole> holes = {})
      : bytes_(capacity_bytes), holes_(std::move(holes)) {
    for (uint64_t i = 0; i < capacity_bytes; ++i) bytes_[i] = LowerPattern(i);
    for (const Hole& h : holes_) {
      std::memset(bytes_.data() + h.offset_bytes, 0, h.length_bytes);
    }
  }

  uint64_t capacity_bytes() const override { return bytes_.size(); }

  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    read_calls_.fetch_add(1, std::memory_order_relaxed);
    read_bytes_.fetch_add(dst.size(), std::memory_order_relaxed);
    if (offset_bytes > bytes_.size() || dst.size() > bytes_.size() - offset_bytes) {
      return Status(EINVAL, "fake lower layers: read outside the disk");
    }
    std::memcpy(dst.data(), bytes_.data() + offset_bytes, dst.size());
    return Status::Ok();
  }

  Result<Run> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const override {
    uint64_t end = std::min<uint64_t>(bytes_.size(), offset_bytes + max_length_bytes);
    for (const Hole& h : holes_) {
      if (offset_bytes >= h.offset_bytes && offset_bytes < h.offset_bytes + h.length_bytes) {
        return Run{false, std::min(end, h.offset_bytes + h.length_bytes) - offset_bytes};
      }
    }
    uint64_t data_end = end;
    for (const Hole& h : holes_) {
      if (h.offset_bytes > offset_bytes) data_end = std::min(data_end, h.offset_bytes);
    }
    return Run{true, data_end - offset_bytes};
  }

  // What the disk holds, as built (nothing ever changes it).
  const std::vector<std::byte>& bytes() const { return bytes_; }
  std::span<const std::byte> bytes(uint64_t offset_bytes, uint64_t length_bytes) const {
    return std::span(bytes_).subspan(offset_bytes, length_bytes);
  }

  uint64_t read_calls() const { return read_calls_.load(); }
  uint64_t read_bytes() const { return read_bytes_.load(); }
  void ResetCounts() {
    read_calls_.store(0);
    read_bytes_.store(0);
  }

 private:
  std::vector<std::byte> bytes_;
  std::vector<Hole> holes_;
  mutable std::atomic<uint64_t> read_calls_{0};
  mutable std::atomic<uint64_t> read_bytes_{0};
};

}  // namespace engine::fakes
