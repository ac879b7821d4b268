// SPDX-License-Identifier: Apache-2.0
#include "vmdk/cowd_header.h"

#include <boost/endian/buffers.hpp>

#include <bit>
#include <cerrno>
#include <cstring>

namespace vmdk {
namespace {

using boost::endian::little_uint32_buf_t;

struct OnDiskCowdHeader {
  little_uint32_buf_t magic;            // 0
  little_uint32_buf_t version;          // 4
  little_uint32_buf_t flags;            // 8
  little_uint32_buf_t num_sectors;      // 12
  little_uint32_buf_t grain_size;       // 16
  little_uint32_buf_t gd_offset;        // 20
  little_uint32_buf_t num_gd_entries;   // 24
  little_uint32_buf_t free_sector;      // 28
  char parent_file_name[1024];          // 32 (child); geometry for a base
  little_uint32_buf_t parent_generation;// 1056
  little_uint32_buf_t generation;       // 1060
  char name[60];                        // 1064
  char description[512];                // 1124
  little_uint32_buf_t saved_generation; // 1636
  uint8_t reserved[8];                  // 1640
  little_uint32_buf_t unclean_shutdown; // 1648
  uint8_t padding[396];                 // 1652
};
static_assert(sizeof(OnDiskCowdHeader) == kCowdHeaderBytes);

}  // namespace

common::Result<CowdHeader> ParseCowdHeader(std::span<const std::byte> bytes) {
  if (bytes.size() < kCowdHeaderBytes) {
    return common::Error(EIO, "COWD header: {} bytes, need {}", bytes.size(), kCowdHeaderBytes);
  }
  OnDiskCowdHeader raw;
  std::memcpy(&raw, bytes.data(), sizeof raw);
  if (raw.magic.value() != kCowdMagic) {
    return common::Error(EIO, "COWD header: bad magic {:#010x}", raw.magic.value());
  }
  CowdHeader h;
  h.version = raw.version.value();
  h.flags = raw.flags.value();
  h.capacity_sectors = raw.num_sectors.value();
  h.grain_sectors = raw.grain_size.value();
  h.gd_offset_sectors = raw.gd_offset.value();
  h.gd_entries = raw.num_gd_entries.value();
  h.free_sector = raw.free_sector.value();
  h.parent_file_name.assign(raw.parent_file_name,
                            strnlen(raw.parent_file_name, sizeof raw.parent_file_name));
  h.generation = raw.generation.value();
  h.unclean_shutdown = raw.unclean_shutdown.value() != 0;
  if (h.version != 1) {
    return common::Error(EIO, "COWD header: unsupported version {}", h.version);
  }
  if (h.grain_sectors == 0 || !std::has_single_bit(h.grain_sectors) ||
      h.grain_sectors > kCowdMaxGrainSectors) {
    return common::Error(EIO, "COWD header: grain size {} sectors is not a power of two from "
                         "1 to {}", h.grain_sectors, kCowdMaxGrainSectors);
  }
  if (h.gd_entries < h.required_gd_entries()) {
    return common::Error(EIO, "COWD header: {} grain directory entries cannot cover {} "
                         "sectors (need {})", h.gd_entries, h.capacity_sectors,
                         h.required_gd_entries());
  }
  return h;
}

std::array<std::byte, kCowdHeaderBytes> EncodeCowdHeader(const CowdHeader& h) {
  OnDiskCowdHeader raw{};
  raw.magic = kCowdMagic;
  raw.version = h.version;
  raw.flags = h.flags;
  raw.num_sectors = h.capacity_sectors;
  raw.grain_size = h.grain_sectors;
  raw.gd_offset = h.gd_offset_sectors;
  raw.num_gd_entries = h.gd_entries;
  raw.free_sector = h.free_sector;
  std::memcpy(raw.parent_file_name, h.parent_file_name.data(),
              std::min(h.parent_file_name.size(), sizeof raw.parent_file_name - 1));
  raw.generation = h.generation;
  raw.unclean_shutdown = h.unclean_shutdown ? 1 : 0;
  std::array<std::byte, kCowdHeaderBytes> out;
  std::memcpy(out.data(), &raw, sizeof raw);
  return out;
}

}  // namespace vmdk
