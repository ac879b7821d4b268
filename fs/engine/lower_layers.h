// SPDX-License-Identifier: Apache-2.0
#pragma once

// The read-only layers under a clone's delta: today a parent VMDK chain (vmdk::Disk);
// snapshot layers join them later. CowDisk reads through this interface only.

#include <memory>

#include "common/status.h"
#include "vmdk/disk.h"

namespace engine {

using common::Result;
using common::Status;

class LowerLayers {
 public:
  virtual ~LowerLayers() = default;
  virtual uint64_t capacity_bytes() const = 0;
  // Thread-safe reads of any range within capacity.
  virtual Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const = 0;
  // Whether the run starting at offset_bytes holds data (true) or reads as zeros, and its
  // length (at most max_length_bytes).
  struct Run {
    bool data = false;
    uint64_t length_bytes = 0;
  };
  virtual Result<Run> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const = 0;
};

// A VMDK chain as the lower layers.
class VmdkLowerLayers final : public LowerLayers {
 public:
  explicit VmdkLowerLayers(std::unique_ptr<vmdk::Disk> disk) : disk_(std::move(disk)) {}
  uint64_t capacity_bytes() const override { return disk_->capacity_bytes(); }
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    return disk_->Read(offset_bytes, dst);
  }
  Result<Run> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const override {
    BOOST_OUTCOME_TRY(m, disk_->Map(offset_bytes, max_length_bytes));
    return Run{m.state == vmdk::BlockState::kData, m.length_bytes};
  }
  const vmdk::Disk& disk() const { return *disk_; }

 private:
  std::unique_ptr<vmdk::Disk> disk_;
};

}  // namespace engine
