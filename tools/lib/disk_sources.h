// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the sparse VMDK writer (vmdk/sparse_writer.h) can copy: a VMDK chain of any
// subformat, or a linked clone's merged disk as the engine serves it. Both are
// thread-safe readers, as the writer needs. Neither owns what it reads: the disk must
// outlive the source.

#include "fs/engine/virtual_disk.h"
#include "vmdk/disk.h"
#include "vmdk/sparse_writer.h"

namespace tools {

class VmdkDiskSource final : public vmdk::DiskSource {
 public:
  explicit VmdkDiskSource(const vmdk::Disk& disk) : disk_(disk) {}
  uint64_t capacity_bytes() const override { return disk_.capacity_bytes(); }
  common::Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    return disk_.Read(offset_bytes, dst);
  }
  // Zeroed grains and ZERO extents are holes: they hold no data.
  common::Result<uint64_t> NextData(uint64_t offset_bytes) const override;
  common::Result<uint64_t> NextHole(uint64_t offset_bytes) const override;

 private:
  common::Result<uint64_t> Next(uint64_t offset_bytes, bool want_data) const;

  const vmdk::Disk& disk_;
};

class VirtualDiskSource final : public vmdk::DiskSource {
 public:
  explicit VirtualDiskSource(const engine::VirtualDisk& disk) : disk_(disk) {}
  uint64_t capacity_bytes() const override { return disk_.capacity_bytes(); }
  common::Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    return disk_.Read(offset_bytes, dst);
  }
  common::Result<uint64_t> NextData(uint64_t offset_bytes) const override {
    return disk_.NextData(offset_bytes);
  }
  common::Result<uint64_t> NextHole(uint64_t offset_bytes) const override {
    return disk_.NextHole(offset_bytes);
  }

 private:
  const engine::VirtualDisk& disk_;
};

}  // namespace tools
