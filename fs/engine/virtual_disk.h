// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a mount presents as D-flat.vmdk: a whole virtual disk of fixed capacity. CowDisk
// (a linked clone's writable view) and ReadOnlyDisk (a plain VMDK mounted read-only)
// implement it, so the FUSE adapter has one thing to call.

#include <cstdint>
#include <span>

#include "common/status.h"

namespace engine {

class VirtualDisk {
 public:
  virtual ~VirtualDisk() = default;
  virtual uint64_t capacity_bytes() const = 0;
  virtual bool read_only() const = 0;
  // Ranges must lie within capacity (EINVAL otherwise; the adapter clamps first).
  virtual common::Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const = 0;
  virtual common::Status Write(uint64_t offset_bytes, std::span<const std::byte> src) = 0;
  // Makes the range read as zeros without touching any lower layer.
  virtual common::Status Discard(uint64_t offset_bytes, uint64_t length_bytes) = 0;
  // Durability point (guest fsync/flush).
  virtual common::Status Flush() = 0;
  // The merged allocation, for SEEK_DATA/SEEK_HOLE: the first offset >= offset_bytes that
  // holds data / reads as zeros; capacity_bytes() when there is none.
  virtual common::Result<uint64_t> NextData(uint64_t offset_bytes) const = 0;
  virtual common::Result<uint64_t> NextHole(uint64_t offset_bytes) const = 0;
  // Host bytes this disk's own writable layer uses (what `du` of the clone grows by).
  virtual uint64_t OwnBytes() const = 0;
};

}  // namespace engine
