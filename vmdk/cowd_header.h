// SPDX-License-Identifier: Apache-2.0
#pragma once

// The ESXi sparse extent header (`COWD`, VMFSSPARSE, vmdk-format.md section 8). Pure
// decoding and encoding of bytes.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"

namespace vmdk {

inline constexpr uint32_t kCowdMagic = 0x44574f43;  // "COWD" read as little-endian u32
inline constexpr size_t kCowdHeaderBytes = 2048;
inline constexpr uint32_t kCowdGtesPerGt = 4096;
// COWD grains are 1 sector by default and at most 1 MiB (section 8).
inline constexpr uint32_t kCowdMaxGrainSectors = 2048;

struct CowdHeader {
  uint32_t version = 1;
  uint32_t flags = 3;
  uint32_t capacity_sectors = 0;
  uint32_t grain_sectors = 1;
  uint32_t gd_offset_sectors = 4;
  uint32_t gd_entries = 0;
  uint32_t free_sector = 0;
  std::string parent_file_name;  // usually empty; descriptors carry the hint instead
  uint32_t generation = 0;
  bool unclean_shutdown = false;

  uint64_t grain_bytes() const { return uint64_t{grain_sectors} * 512; }
  // GD entries needed to cover the capacity (each GT covers 4096 grains).
  uint64_t required_gd_entries() const {
    uint64_t per_gt = uint64_t{kCowdGtesPerGt} * grain_sectors;
    return (capacity_sectors + per_gt - 1) / per_gt;
  }
};

// Decodes and validates a COWD header (at least 2048 bytes). EIO for a bad magic, a
// version other than 1, a grain size that is zero, not a power of two or above
// kCowdMaxGrainSectors, or fewer GD entries than the capacity needs.
common::Result<CowdHeader> ParseCowdHeader(std::span<const std::byte> bytes);

std::array<std::byte, kCowdHeaderBytes> EncodeCowdHeader(const CowdHeader& header);

}  // namespace vmdk
