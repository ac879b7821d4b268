// SPDX-License-Identifier: Apache-2.0
#pragma once

// The header of a delta layer's map file (docs/delta-format.md): 4096 bytes,
// little-endian, protected by an XXH3-64 checksum of itself. Pure encoding and decoding.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"

namespace engine {

using common::Result;
using common::Status;

// Version 1: sparse layers only. Version 2 adds packed layers (a frozen layer's owned
// blocks side by side, docs/delta-format.md); sparse layers are still written as 1, so
// only packed ones need a reader that knows them.
inline constexpr uint32_t kDeltaVersion = 1;
inline constexpr uint32_t kDeltaPackedVersion = 2;
inline constexpr uint32_t kBlockBytes = 4096;
inline constexpr uint64_t kDeltaHeaderBytes = 4096;
// Largest disk a delta layer serves: VMware's 62 TiB limit, with headroom (as vmdk/).
inline constexpr uint64_t kMaxDeltaCapacityBytes = uint64_t{64} << 40;

using LayerId = std::array<uint8_t, 16>;
using Fingerprint = std::array<uint8_t, 16>;

struct DeltaHeader {
  uint32_t version = kDeltaVersion;
  uint32_t block_bytes = kBlockBytes;
  uint64_t capacity_bytes = 0;
  uint64_t block_count = 0;
  uint64_t bitmap_offset_bytes = kDeltaHeaderBytes;
  uint64_t bitmap_bytes = 0;
  LayerId layer_id{};
  LayerId parent_layer_id{};  // all zero: the parent is a VMDK chain
  Fingerprint parent_fingerprint{};
  bool clean_shutdown = true;
  // The data file holds the owned blocks in ascending order, each at 4096 x (the number of
  // owned blocks before it); a packed layer is frozen: it never opens for writing.
  bool packed = false;
  uint64_t generation = 0;

  // A header for a new layer over a disk of capacity_bytes (a multiple of 512).
  static DeltaHeader ForCapacity(uint64_t capacity_bytes);
  uint64_t map_file_bytes() const { return bitmap_offset_bytes + bitmap_bytes; }
};

// A new random layer id, and the 32-hex-digit form ids take in clone.json.
LayerId NewLayerId();
std::string ToHex(std::span<const uint8_t> bytes);
// The id from its clone.json form: "" is the all-zero id (the base), else 32 hex digits
// (EINVAL otherwise).
Result<LayerId> ParseLayerId(std::string_view text);

// Decodes and validates the first kDeltaHeaderBytes of a map file. EIO naming the field
// for a bad magic, checksum, block size or geometry; ENOTSUP for another version.
Result<DeltaHeader> ParseDeltaHeader(std::span<const std::byte> bytes);

// Writes the header, checksum included, into the first kDeltaHeaderBytes of `out`.
void EncodeDeltaHeader(const DeltaHeader& header, std::span<std::byte> out);

}  // namespace engine
