// SPDX-License-Identifier: Apache-2.0
#pragma once

// A VMDK chain presented read-only (`clonefs DISK.vmdk MNT` of a plain VMDK): reads go
// straight to the chain, every change is refused with EROFS.

#include <memory>

#include "fs/engine/lower_layers.h"
#include "fs/engine/virtual_disk.h"

namespace engine {

class ReadOnlyDisk final : public VirtualDisk {
 public:
  explicit ReadOnlyDisk(std::unique_ptr<LowerLayers> lower) : lower_(std::move(lower)) {}

  uint64_t capacity_bytes() const override { return lower_->capacity_bytes(); }
  bool read_only() const override { return true; }
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    return lower_->Read(offset_bytes, dst);
  }
  Status Write(uint64_t, std::span<const std::byte>) override { return Refuse(); }
  Status Discard(uint64_t, uint64_t) override { return Refuse(); }
  Status Flush() override { return Status::Ok(); }
  Result<uint64_t> NextData(uint64_t offset_bytes) const override;
  Result<uint64_t> NextHole(uint64_t offset_bytes) const override;
  uint64_t OwnBytes() const override { return 0; }

 private:
  static Status Refuse() { return common::Error(EROFS, "the disk is mounted read-only"); }
  Result<uint64_t> Next(uint64_t offset_bytes, bool want_data) const;

  std::unique_ptr<LowerLayers> lower_;
};

}  // namespace engine
