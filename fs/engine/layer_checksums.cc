// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/layer_checksums.h"

#include <boost/endian/conversion.hpp>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fs/engine/layer_stack.h"

namespace engine {
namespace {

using common::Error;
using common::Result;
using common::Status;

constexpr char kMagic[8] = {'C', 'L', 'N', 'F', 'S', 'S', 'U', 'M'};
constexpr uint32_t kVersion = 2;
constexpr uint32_t kSparseVersion = 1;  // one entry per block of the disk
constexpr uint64_t kHeaderBytes = 4096;
// Blocks hashed per read: large enough for sequential reads of the layer's data file.
constexpr uint64_t kBatchBlocks = 256;

struct SumsHeader {
  uint32_t version = kVersion;
  uint32_t block_bytes = kBlockBytes;
  uint64_t block_count = 0;
  LayerId layer_id{};
};

// Header bytes: magic 0-7, version 8-11, block_bytes 12-15, block_count 16-23,
// layer_id 24-39, checksum 40-47 (XXH3-64 of the 4096 bytes with this field zero).
void Encode(const SumsHeader& h, std::span<std::byte, kHeaderBytes> out) {
  std::memset(out.data(), 0, out.size());
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(p, kMagic, sizeof kMagic);
  boost::endian::store_little_u32(p + 8, h.version);
  boost::endian::store_little_u32(p + 12, h.block_bytes);
  boost::endian::store_little_u64(p + 16, h.block_count);
  std::memcpy(p + 24, h.layer_id.data(), h.layer_id.size());
  boost::endian::store_little_u64(p + 40, XXH3_64bits(p, kHeaderBytes));
}

// Checks the header against its layer; returns the file's version.
Result<uint32_t> Decode(std::span<const std::byte, kHeaderBytes> in, const DeltaLayer& layer,
                        const std::string& path) {
  std::array<uint8_t, kHeaderBytes> copy;
  std::memcpy(copy.data(), in.data(), kHeaderBytes);
  if (std::memcmp(copy.data(), kMagic, sizeof kMagic) != 0) {
    return Error(EIO, "{}: not a checksum file (bad magic)", path);
  }
  const uint64_t stored = boost::endian::load_little_u64(copy.data() + 40);
  std::memset(copy.data() + 40, 0, 8);
  if (XXH3_64bits(copy.data(), kHeaderBytes) != stored) {
    return Error(EIO, "{}: checksum file header is damaged (checksum mismatch)", path);
  }
  const uint32_t version = boost::endian::load_little_u32(copy.data() + 8);
  if (version != kVersion && version != kSparseVersion) {
    return Error(ENOTSUP, "{}: checksum file version {} (this clonefs reads {} and {})", path,
                 version, kSparseVersion, kVersion);
  }
  const DeltaHeader header = layer.header();
  if (boost::endian::load_little_u32(copy.data() + 12) != header.block_bytes ||
      boost::endian::load_little_u64(copy.data() + 16) != header.block_count) {
    return Error(EIO, "{}: checksum file geometry does not match its layer", path);
  }
  if (std::memcmp(copy.data() + 24, header.layer_id.data(), header.layer_id.size()) != 0) {
    return Error(EIO, "{}: checksum file belongs to another layer", path);
  }
  return version;
}

// Where the entry of a batch starting at `first_block`, the `index`-th owned block, is.
uint64_t EntryOffset(uint32_t version, uint64_t first_block, uint64_t index) {
  return kHeaderBytes + 8 * (version == kSparseVersion ? first_block : index);
}

uint64_t FileBytes(uint32_t version, const DeltaLayer& layer) {
  return kHeaderBytes +
         8 * (version == kSparseVersion ? layer.block_count() : layer.owned_blocks());
}

// Hashes owned blocks run by run, kBatchBlocks at a time; fn(first_block, index, sums)
// gets each batch's checksums, `index` counting the owned blocks before first_block.
template <typename Fn>
Status HashOwnedBlocks(const DeltaLayer& layer, const ChecksumOptions& options, Fn&& fn) {
  std::vector<std::byte> buffer(kBatchBlocks * kBlockBytes);
  std::vector<uint64_t> sums(kBatchBlocks);
  uint64_t done = 0;
  uint64_t reported = 0;
  uint64_t index = 0;
  Status status;
  ForEachOwnedRun(layer, [&](uint64_t first, uint64_t count) {
    for (uint64_t b = first; b < first + count && status.ok(); b += kBatchBlocks) {
      const uint64_t n = std::min(kBatchBlocks, first + count - b);
      const uint64_t bytes = std::min(n * kBlockBytes, layer.capacity_bytes() - b * kBlockBytes);
      auto data = std::span(buffer).first(bytes);
      status = layer.ReadData(b * kBlockBytes, data);
      if (!status.ok()) return;
      for (uint64_t i = 0; i < n; ++i) {
        auto block = data.subspan(i * kBlockBytes,
                                  std::min<uint64_t>(kBlockBytes, bytes - i * kBlockBytes));
        sums[i] = XXH3_64bits(block.data(), block.size());
      }
      status = fn(b, index, std::span(sums).first(n));
      index += n;
      done += bytes;
      if (options.progress && done - reported >= (4 << 20)) {
        options.progress(done);
        reported = done;
      }
    }
  });
  if (status.ok() && options.progress) options.progress(done);
  return status;
}

}  // namespace

Status WriteLayerChecksums(common::Storage& storage, const DeltaLayer& layer,
                           const std::string& path, const ChecksumOptions& options) {
  BOOST_OUTCOME_TRY(file, storage.CreateExclusive(path));
  SumsHeader h;
  h.block_count = layer.block_count();
  h.layer_id = layer.header().layer_id;
  std::array<std::byte, kHeaderBytes> header;
  Encode(h, header);
  BOOST_OUTCOME_TRYV(file->WriteAt(0, header));
  BOOST_OUTCOME_TRYV(file->Truncate(FileBytes(kVersion, layer)));
  std::vector<std::byte> entries(kBatchBlocks * 8);
  BOOST_OUTCOME_TRYV(HashOwnedBlocks(layer, options, [&](uint64_t first, uint64_t index,
                                                         std::span<const uint64_t> sums) {
    for (size_t i = 0; i < sums.size(); ++i) {
      boost::endian::store_little_u64(reinterpret_cast<uint8_t*>(entries.data()) + 8 * i,
                                      sums[i]);
    }
    return file->WriteAt(EntryOffset(kVersion, first, index),
                         std::span(entries).first(8 * sums.size()));
  }));
  return file->Sync();
}

namespace {

// Checks a checksum file's header and size against its layer; returns its version.
Result<uint32_t> CheckHeader(const common::File& file, const DeltaLayer& layer,
                             const std::string& path) {
  std::array<std::byte, kHeaderBytes> header;
  BOOST_OUTCOME_TRYV(file.ReadExactAt(0, header, "checksum file header"));
  BOOST_OUTCOME_TRY(version, Decode(header, layer, path));
  BOOST_OUTCOME_TRY(size, file.Size());
  if (size != FileBytes(version, layer)) {
    return Error(EIO, "{}: checksum file is {} bytes, expected {}", path, size,
                 FileBytes(version, layer));
  }
  return version;
}

}  // namespace

Status CheckChecksumHeader(common::Storage& storage, const DeltaLayer& layer,
                           const std::string& path) {
  BOOST_OUTCOME_TRY(file, storage.Open(path, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRYV(CheckHeader(*file, layer, path));
  return Status::Ok();
}

Result<ScrubReport> ScrubLayer(common::Storage& storage, const DeltaLayer& layer,
                               const std::string& path, const ChecksumOptions& options) {
  BOOST_OUTCOME_TRY(file, storage.Open(path, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(version, CheckHeader(*file, layer, path));
  ScrubReport report;
  std::vector<std::byte> entries(kBatchBlocks * 8);
  BOOST_OUTCOME_TRYV(HashOwnedBlocks(layer, options, [&](uint64_t first, uint64_t index,
                                                         std::span<const uint64_t> sums)
                                                         -> Status {
    auto want = std::span(entries).first(8 * sums.size());
    BOOST_OUTCOME_TRYV(
        file->ReadExactAt(EntryOffset(version, first, index), want, "block checksums"));
    for (size_t i = 0; i < sums.size(); ++i) {
      const uint64_t stored =
          boost::endian::load_little_u64(reinterpret_cast<const uint8_t*>(want.data()) + 8 * i);
      if (stored != sums[i]) {
        report.bad_blocks.push_back(first + i);
        report.bad_file_offsets.push_back(
            (layer.packed() ? index + i : first + i) * kBlockBytes);
      }
    }
    report.checked_blocks += sums.size();
    return Status::Ok();
  }));
  return report;
}

}  // namespace engine
