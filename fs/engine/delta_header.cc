// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/delta_header.h"

#include <boost/endian/buffers.hpp>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>

namespace engine {
namespace {

using boost::endian::little_uint32_buf_t;
using boost::endian::little_uint64_buf_t;

constexpr char kMagic[8] = {'C', 'L', 'N', 'F', 'S', 'M', 'A', 'P'};

struct OnDiskDeltaHeader {
  char magic[8];                          // 0
  little_uint32_buf_t version;            // 8
  little_uint32_buf_t block_bytes;        // 12
  little_uint64_buf_t capacity_bytes;     // 16
  little_uint64_buf_t block_count;        // 24
  little_uint64_buf_t bitmap_offset;      // 32
  little_uint64_buf_t bitmap_bytes;       // 40
  uint8_t layer_id[16];                   // 48
  uint8_t parent_layer_id[16];            // 64
  uint8_t parent_fingerprint[16];         // 80
  little_uint32_buf_t flags;              // 96
  little_uint32_buf_t reserved;           // 100
  little_uint64_buf_t generation;         // 104
  little_uint64_buf_t checksum;           // 112
  uint8_t zero[kDeltaHeaderBytes - 120];  // 120
};
static_assert(sizeof(OnDiskDeltaHeader) == kDeltaHeaderBytes);
constexpr size_t kChecksumOffset = 112;
constexpr uint32_t kFlagClean = 1;
constexpr uint32_t kFlagPacked = 2;

uint64_t Checksum(std::span<const std::byte> header) {
  // The checksum field counts as zero.
  std::array<std::byte, kDeltaHeaderBytes> copy;
  std::memcpy(copy.data(), header.data(), kDeltaHeaderBytes);
  std::memset(copy.data() + kChecksumOffset, 0, 8);
  return XXH3_64bits(copy.data(), copy.size());
}

uint64_t BitmapBytesFor(uint64_t block_count) {
  uint64_t bytes = (block_count + 7) / 8;
  return (bytes + kBlockBytes - 1) / kBlockBytes * kBlockBytes;
}

}  // namespace

LayerId NewLayerId() {
  std::random_device random;
  LayerId id;
  for (auto& b : id) b = static_cast<uint8_t>(random());
  return id;
}

std::string ToHex(std::span<const uint8_t> bytes) {
  std::string out;
  for (uint8_t b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

DeltaHeader DeltaHeader::ForCapacity(uint64_t capacity_bytes) {
  DeltaHeader h;
  h.capacity_bytes = capacity_bytes;
  h.block_count = (capacity_bytes + kBlockBytes - 1) / kBlockBytes;
  h.bitmap_bytes = BitmapBytesFor(h.block_count);
  return h;
}

Result<LayerId> ParseLayerId(std::string_view text) {
  LayerId id{};
  if (text.empty()) return id;
  if (text.size() != 2 * id.size()) {
    return common::Error(EINVAL, "layer id '{}' is not 32 hex digits", text);
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < id.size(); ++i) {
    const int hi = nibble(text[2 * i]);
    const int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return common::Error(EINVAL, "layer id '{}' is not 32 hex digits", text);
    id[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return id;
}

Result<DeltaHeader> ParseDeltaHeader(std::span<const std::byte> bytes) {
  if (bytes.size() < kDeltaHeaderBytes) {
    return common::Error(EIO, "delta header: {} bytes, need {}", bytes.size(), kDeltaHeaderBytes);
  }
  OnDiskDeltaHeader raw;
  std::memcpy(&raw, bytes.data(), sizeof raw);
  if (std::memcmp(raw.magic, kMagic, sizeof kMagic) != 0) {
    return common::Error(EIO, "delta header: bad magic (not a clonefs map file)");
  }
  if (raw.checksum.value() != Checksum(bytes)) {
    return common::Error(EIO, "delta header: checksum mismatch (header is corrupt)");
  }
  DeltaHeader h;
  h.version = raw.version.value();
  if (h.version != kDeltaVersion && h.version != kDeltaPackedVersion) {
    return common::Error(ENOTSUP, "delta header: version {} (this clonefs reads {} and {})",
                         h.version, kDeltaVersion, kDeltaPackedVersion);
  }
  h.block_bytes = raw.block_bytes.value();
  h.capacity_bytes = raw.capacity_bytes.value();
  h.block_count = raw.block_count.value();
  h.bitmap_offset_bytes = raw.bitmap_offset.value();
  h.bitmap_bytes = raw.bitmap_bytes.value();
  std::memcpy(h.layer_id.data(), raw.layer_id, 16);
  std::memcpy(h.parent_layer_id.data(), raw.parent_layer_id, 16);
  std::memcpy(h.parent_fingerprint.data(), raw.parent_fingerprint, 16);
  const uint32_t flags = raw.flags.value();
  if ((flags & ~(kFlagClean | kFlagPacked)) != 0 ||
      (h.version == kDeltaVersion && (flags & kFlagPacked) != 0)) {
    return common::Error(EIO, "delta header: unknown flags {:#x} for version {}", flags,
                         h.version);
  }
  h.clean_shutdown = flags & kFlagClean;
  h.packed = flags & kFlagPacked;
  h.generation = raw.generation.value();
  if (h.block_bytes != kBlockBytes) {
    return common::Error(EIO, "delta header: block size {} (expected {})", h.block_bytes,
                         kBlockBytes);
  }
  if (h.capacity_bytes == 0 || h.capacity_bytes % 512 != 0 ||
      h.capacity_bytes > kMaxDeltaCapacityBytes) {
    return common::Error(EIO, "delta header: capacity {} bytes is not a multiple of 512 up to "
                         "64 TiB", h.capacity_bytes);
  }
  DeltaHeader expected = DeltaHeader::ForCapacity(h.capacity_bytes);
  if (h.block_count != expected.block_count || h.bitmap_offset_bytes != kDeltaHeaderBytes ||
      h.bitmap_bytes != expected.bitmap_bytes) {
    return common::Error(EIO, "delta header: geometry (blocks {}, bitmap {} bytes at {}) does "
                         "not fit capacity {}", h.block_count, h.bitmap_bytes,
                         h.bitmap_offset_bytes, h.capacity_bytes);
  }
  return h;
}

void EncodeDeltaHeader(const DeltaHeader& h, std::span<std::byte> out) {
  OnDiskDeltaHeader raw{};
  std::memcpy(raw.magic, kMagic, sizeof kMagic);
  raw.version = h.packed ? kDeltaPackedVersion : h.version;
  raw.block_bytes = h.block_bytes;
  raw.capacity_bytes = h.capacity_bytes;
  raw.block_count = h.block_count;
  raw.bitmap_offset = h.bitmap_offset_bytes;
  raw.bitmap_bytes = h.bitmap_bytes;
  std::memcpy(raw.layer_id, h.layer_id.data(), 16);
  std::memcpy(raw.parent_layer_id, h.parent_layer_id.data(), 16);
  std::memcpy(raw.parent_fingerprint, h.parent_fingerprint.data(), 16);
  raw.flags = (h.clean_shutdown ? kFlagClean : 0) | (h.packed ? kFlagPacked : 0);
  raw.generation = h.generation;
  std::memcpy(out.data(), &raw, sizeof raw);
  uint64_t sum = Checksum(out);
  raw.checksum = sum;
  std::memcpy(out.data() + kChecksumOffset, &raw.checksum, 8);
}

}  // namespace engine
