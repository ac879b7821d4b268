// SPDX-License-Identifier: Apache-2.0
#pragma once

// Flat-style extents (FLAT, VMFS, VMFSRDM, VMFSRAW: extent byte x is at file byte
// offset + x) and ZERO extents (nothing stored, reads are zeros).

#include <memory>

#include "common/storage.h"
#include "vmdk/extent.h"

namespace vmdk {

class FlatExtent final : public Extent {
 public:
  // Fails with EIO when the file is shorter than offset + size: reading past its end
  // would invent zeros the disk never held.
  static Result<std::unique_ptr<FlatExtent>> Open(std::unique_ptr<common::File> file,
                                                  uint64_t file_offset_bytes,
                                                  uint64_t extent_size_bytes);

  uint64_t size_bytes() const override { return size_bytes_; }
  Result<Mapping> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const override;
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override;
  ExtentDetails Details() const override;

 private:
  FlatExtent(std::unique_ptr<common::File> file, uint64_t file_offset_bytes, uint64_t size_bytes)
      : file_(std::move(file)), file_offset_bytes_(file_offset_bytes), size_bytes_(size_bytes) {}

  std::unique_ptr<common::File> file_;
  uint64_t file_offset_bytes_;
  uint64_t size_bytes_;
};

class ZeroExtent final : public Extent {
 public:
  explicit ZeroExtent(uint64_t size_bytes) : size_bytes_(size_bytes) {}

  uint64_t size_bytes() const override { return size_bytes_; }
  Result<Mapping> Map(uint64_t offset_bytes, uint64_t max_length_bytes) const override;
  Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const override;
  ExtentDetails Details() const override { return {{"format", "ZERO"}}; }

 private:
  uint64_t size_bytes_;
};

}  // namespace vmdk
