// SPDX-License-Identifier: Apache-2.0
#include "vmdk/sparse_header.h"

#include <boost/endian/buffers.hpp>

#include <bit>
#include <cerrno>
#include <cstring>

namespace vmdk {
namespace {

using boost::endian::little_uint16_buf_t;
using boost::endian::little_uint32_buf_t;
using boost::endian::little_uint64_buf_t;

// The on-disk header, byte for byte (section 5.1). The buffer types are unaligned, so the
// struct has no padding and every field sits at its documented offset.
struct OnDiskSparseHeader {
  little_uint32_buf_t magic;              // 0
  little_uint32_buf_t version;            // 4
  little_uint32_buf_t flags;              // 8
  little_uint64_buf_t capacity;           // 12
  little_uint64_buf_t grain_size;         // 20
  little_uint64_buf_t descriptor_offset;  // 28
  little_uint64_buf_t descriptor_size;    // 36
  little_uint32_buf_t num_gtes_per_gt;    // 44
  little_uint64_buf_t rgd_offset;         // 48
  little_uint64_buf_t gd_offset;          // 56
  little_uint64_buf_t overhead;           // 64
  uint8_t unclean_shutdown;               // 72
  uint8_t newline_chars[4];               // 73
  little_uint16_buf_t compress_algorithm; // 77
  uint8_t pad[433];                       // 79
};
static_assert(sizeof(OnDiskSparseHeader) == 512);

struct OnDiskMarker {
  little_uint64_buf_t value;
  little_uint32_buf_t size;
  little_uint32_buf_t type;
};
static_assert(sizeof(OnDiskMarker) == 16);

}  // namespace

Result<SparseHeader> ParseSparseHeader(std::span<const std::byte> sector) {
  if (sector.size() < sizeof(OnDiskSparseHeader)) {
    return common::Error(EIO, "sparse header: {} bytes, need 512", sector.size());
  }
  OnDiskSparseHeader raw;
  std::memcpy(&raw, sector.data(), sizeof raw);
  if (raw.magic.value() != kSparseMagic) {
    return common::Error(EIO, "sparse header: bad magic {:#010x} (expected KDMV)",
                         raw.magic.value());
  }
  SparseHeader h;
  h.version = raw.version.value();
  h.flags = raw.flags.value();
  h.capacity_sectors = raw.capacity.value();
  h.grain_sectors = raw.grain_size.value();
  h.descriptor_offset_sectors = raw.descriptor_offset.value();
  h.descriptor_size_sectors = raw.descriptor_size.value();
  h.num_gtes_per_gt = raw.num_gtes_per_gt.value();
  h.rgd_offset_sectors = raw.rgd_offset.value();
  h.gd_offset_sectors = raw.gd_offset.value();
  h.overhead_sectors = raw.overhead.value();
  h.unclean_shutdown = raw.unclean_shutdown != 0;
  std::memcpy(h.newline_chars.data(), raw.newline_chars, 4);
  h.compress_algorithm = raw.compress_algorithm.value();

  if (h.version == 0 || h.version > 3) {
    return common::Error(EIO, "sparse header: unsupported version {} (1 to 3 are known)",
                         h.version);
  }
  if (h.flags & kFlagValidNewlineDetection) {
    static constexpr std::array<uint8_t, 4> kExpected = {'\n', ' ', '\r', '\n'};
    if (h.newline_chars != kExpected) {
      return common::Error(EIO,
                           "sparse header: newline check bytes at offset 73 are mangled "
                           "(file was transferred in text mode)");
    }
  }
  if (uint32_t unknown = h.flags & 0xffff0000u & ~kKnownIncompatibleFlags) {
    return common::Error(ENOTSUP, "sparse header: unknown incompatible flags {:#x}", unknown);
  }
  if ((h.flags & kFlagMarkers) && !(h.flags & kFlagCompressed)) {
    return common::Error(EIO, "sparse header: markers flag without compression flag");
  }
  if (h.compressed() && h.compress_algorithm != kCompressionDeflate) {
    return common::Error(ENOTSUP, "sparse header: unknown compression algorithm {}",
                         h.compress_algorithm);
  }
  if (h.grain_sectors == 0 || !std::has_single_bit(h.grain_sectors) ||
      h.grain_sectors > kMaxGrainSectors) {
    return common::Error(EIO, "sparse header: grain size {} sectors is not a power of two "
                         "from 1 to {}", h.grain_sectors, kMaxGrainSectors);
  }
  if (h.num_gtes_per_gt == 0 || h.num_gtes_per_gt > kMaxGtesPerGt) {
    return common::Error(EIO, "sparse header: {} entries per grain table (1 to {} allowed)",
                         h.num_gtes_per_gt, kMaxGtesPerGt);
  }
  if (h.capacity_sectors > kMaxCapacitySectors) {
    return common::Error(EIO, "sparse header: capacity {} sectors exceeds the {} TiB limit",
                         h.capacity_sectors, kMaxCapacitySectors * 512 >> 40);
  }
  // Offsets are checked against the file size by the caller, in bytes: each must convert
  // to a byte offset that fits off_t first.
  constexpr uint64_t kMaxOffsetSectors = (uint64_t{1} << 63) / 512 - 1;
  const std::pair<const char*, uint64_t> offsets[] = {
      {"embedded descriptor offset", h.descriptor_offset_sectors},
      {"embedded descriptor size", h.descriptor_size_sectors},
      {"redundant grain directory offset", h.rgd_offset_sectors},
      {"grain directory offset", h.gd_at_end() ? 0 : h.gd_offset_sectors},
      {"overhead", h.overhead_sectors}};
  for (const auto& [name, sectors] : offsets) {
    if (sectors > kMaxOffsetSectors) {
      return common::Error(EIO, "sparse header: {} of {} sectors lies beyond any file", name,
                           sectors);
    }
  }
  return h;
}

std::array<std::byte, 512> EncodeSparseHeader(const SparseHeader& h) {
  OnDiskSparseHeader raw{};
  raw.magic = kSparseMagic;
  raw.version = h.version;
  raw.flags = h.flags;
  raw.capacity = h.capacity_sectors;
  raw.grain_size = h.grain_sectors;
  raw.descriptor_offset = h.descriptor_offset_sectors;
  raw.descriptor_size = h.descriptor_size_sectors;
  raw.num_gtes_per_gt = h.num_gtes_per_gt;
  raw.rgd_offset = h.rgd_offset_sectors;
  raw.gd_offset = h.gd_offset_sectors;
  raw.overhead = h.overhead_sectors;
  raw.unclean_shutdown = h.unclean_shutdown ? 1 : 0;
  std::memcpy(raw.newline_chars, h.newline_chars.data(), 4);
  raw.compress_algorithm = h.compress_algorithm;
  std::array<std::byte, 512> out;
  std::memcpy(out.data(), &raw, sizeof raw);
  return out;
}

Marker ParseMarker(std::span<const std::byte> bytes) {
  OnDiskMarker raw;
  std::memcpy(&raw, bytes.data(), sizeof raw);
  return Marker{raw.value.value(), raw.size.value(), raw.type.value()};
}

std::array<std::byte, 512> EncodeMarker(uint64_t value, MarkerType type) {
  std::array<std::byte, 512> out{};
  OnDiskMarker raw;
  raw.value = value;
  raw.size = 0;
  raw.type = static_cast<uint32_t>(type);
  std::memcpy(out.data(), &raw, sizeof raw);
  return out;
}

}  // namespace vmdk
