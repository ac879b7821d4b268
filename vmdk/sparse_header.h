// SPDX-License-Identifier: Apache-2.0
#pragma once

// The hosted sparse extent header (`KDMV`, vmdk-format.md section 5) and the stream
// markers of streamOptimized files (section 6.2). Pure decoding and encoding of bytes.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/status.h"

namespace vmdk {

using common::Result;
using common::Status;

inline constexpr uint32_t kSparseMagic = 0x564d444b;  // "KDMV" read as little-endian u32
inline constexpr uint64_t kGdAtEnd = 0xffffffffffffffffULL;

// Header flag bits (section 5.2).
inline constexpr uint32_t kFlagValidNewlineDetection = 1u << 0;
inline constexpr uint32_t kFlagRedundantGrainTable = 1u << 1;
inline constexpr uint32_t kFlagZeroedGrainGte = 1u << 2;
inline constexpr uint32_t kFlagCompressed = 1u << 16;
inline constexpr uint32_t kFlagMarkers = 1u << 17;
// Bits 16-31 are incompatible: a reader refuses a file with one it does not know.
inline constexpr uint32_t kKnownIncompatibleFlags = kFlagCompressed | kFlagMarkers;

inline constexpr uint16_t kCompressionNone = 0;
inline constexpr uint16_t kCompressionDeflate = 1;

// Bounds on untrusted header fields, each with its reason:
// Grains above 1 MiB (2048 sectors) are unknown in practice (VMware writes 128 sectors,
// QEMU at most 128) and bound the per-grain buffers.
inline constexpr uint64_t kMaxGrainSectors = 2048;
// A grain table above 64 Ki entries (256 KiB) is unknown in practice (every writer uses
// 512) and bounds each cached table.
inline constexpr uint32_t kMaxGtesPerGt = 65536;
// Largest virtual size accepted: VMware's limit is 62 TiB; 64 TiB leaves headroom.
inline constexpr uint64_t kMaxCapacitySectors = (64ULL << 40) / 512;

struct SparseHeader {
  uint32_t version = 1;
  uint32_t flags = kFlagValidNewlineDetection | kFlagRedundantGrainTable;
  uint64_t capacity_sectors = 0;
  uint64_t grain_sectors = 128;
  uint64_t descriptor_offset_sectors = 0;
  uint64_t descriptor_size_sectors = 0;
  uint32_t num_gtes_per_gt = 512;
  uint64_t rgd_offset_sectors = 0;
  uint64_t gd_offset_sectors = 0;
  uint64_t overhead_sectors = 0;
  bool unclean_shutdown = false;
  // Bytes 73-76: '\n', ' ', '\r', '\n' unless mangled by a text-mode transfer.
  std::array<uint8_t, 4> newline_chars = {'\n', ' ', '\r', '\n'};
  uint16_t compress_algorithm = kCompressionNone;

  bool compressed() const { return flags & kFlagCompressed; }
  bool has_markers() const { return flags & kFlagMarkers; }
  bool gd_at_end() const { return gd_offset_sectors == kGdAtEnd; }
  uint64_t grain_bytes() const { return grain_sectors * 512; }
  uint64_t grain_count() const { return (capacity_sectors + grain_sectors - 1) / grain_sectors; }
  uint64_t gd_entries() const { return (grain_count() + num_gtes_per_gt - 1) / num_gtes_per_gt; }
};

// Decodes and validates a 512-byte KDMV header. EIO (corrupt) for a bad magic, a
// version above 3, mangled newline bytes, a grain size that is zero, not a power of two
// or above kMaxGrainSectors, numGTEsPerGT of 0 or above kMaxGtesPerGt, a capacity above
// kMaxCapacitySectors; ENOTSUP for an unknown incompatible flag or compression
// algorithm. Does not check offsets against the file: the caller knows its size.
Result<SparseHeader> ParseSparseHeader(std::span<const std::byte> sector);

// The 512-byte on-disk form (used by tests and by writers of new sparse files).
std::array<std::byte, 512> EncodeSparseHeader(const SparseHeader& header);

// Stream markers (section 6.2).
enum class MarkerType : uint32_t { kEndOfStream = 0, kGrainTable = 1, kGrainDirectory = 2,
                                   kFooter = 3, kProgress = 4 };
struct Marker {
  uint64_t value = 0;  // grain LBA (sectors) for a grain marker, else metadata sectors
  uint32_t size = 0;   // compressed bytes; non-zero means grain marker
  uint32_t type = 0;   // meaningful only when size == 0
  bool is_grain() const { return size != 0; }
};
inline constexpr size_t kGrainMarkerHeaderBytes = 12;  // lba u64 + size u32
// Decodes the first 16 bytes of a marker sector (needs at least 16 bytes).
Marker ParseMarker(std::span<const std::byte> bytes);
// A metadata marker sector (value, size 0, type).
std::array<std::byte, 512> EncodeMarker(uint64_t value, MarkerType type);

}  // namespace vmdk
