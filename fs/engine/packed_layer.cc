// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/packed_layer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <vector>

#include <boost/endian/conversion.hpp>

#include "fs/engine/layer_stack.h"

namespace engine {
namespace {

using common::Error;
using common::Result;
using common::Status;

constexpr uint64_t kCopyBytes = 1 << 20;
constexpr uint64_t kProgressBytes = 4 << 20;

// Copies the packed layer's data in ascending block order, each block from the topmost
// source owning it.
class PackedCopier {
 public:
  PackedCopier(std::span<const DeltaLayer* const> sources, common::File& out,
               const PackOptions& options)
      : sources_(sources), out_(out), options_(options), buffer_(kCopyBytes) {}

  // Blocks [first, first + count), all owned by some source, go to the file at
  // file_offset on.
  Status CopyRun(uint64_t first, uint64_t count, uint64_t file_offset) {
    for (uint64_t block = first; block < first + count;) {
      uint64_t n = first + count - block;
      const DeltaLayer* from = nullptr;
      for (const DeltaLayer* source : sources_) {
        bool owned = false;
        n = std::min(n, source->RunLength(block, n, &owned));
        if (owned) {
          from = source;
          break;
        }
      }
      if (from == nullptr) return Error(EINVAL, "block {} is owned by no source", block);
      BOOST_OUTCOME_TRYV(CopyData(*from, block, n, file_offset + (block - first) * kBlockBytes));
      block += n;
    }
    return Status::Ok();
  }

  void Finish() {
    if (options_.progress) options_.progress(done_);
  }

 private:
  // The data of blocks [block, block + n) of `from`, skipping its holes.
  Status CopyData(const DeltaLayer& from, uint64_t block, uint64_t n, uint64_t file_offset) {
    const uint64_t begin = block * kBlockBytes;
    return ForEachDataPiece(from, block, n, kCopyBytes, [&](uint64_t at, uint64_t length) -> Status {
      auto part = std::span(buffer_).first(length);
      BOOST_OUTCOME_TRYV(from.ReadData(at, part));
      const uint64_t to = file_offset + (at - begin);
      BOOST_OUTCOME_TRYV(out_.WriteAt(to, part));
      // Writeback starts now, so the final fdatasync finds little left to do.
      BOOST_OUTCOME_TRYV(out_.StartWriteback(to, part.size()));
      done_ += part.size();
      if (options_.progress && done_ - reported_ >= kProgressBytes) {
        options_.progress(done_);
        reported_ = done_;
      }
      return Status::Ok();
    });
  }

  std::span<const DeltaLayer* const> sources_;
  common::File& out_;
  const PackOptions& options_;
  std::vector<std::byte> buffer_;
  uint64_t done_ = 0;
  uint64_t reported_ = 0;
};

// The map file: the header, then the bitmap's non-zero pages (the rest stay holes).
Status WriteMap(common::File& map, const DeltaHeader& header, const OwnershipBits& bits) {
  BOOST_OUTCOME_TRYV(map.Truncate(header.map_file_bytes()));
  std::vector<std::byte> head(kDeltaHeaderBytes);
  EncodeDeltaHeader(header, head);
  BOOST_OUTCOME_TRYV(map.WriteAt(0, head));
  const uint64_t words_per_page = kBlockBytes / 8;
  std::vector<std::byte> page(kBlockBytes);
  for (uint64_t first = 0; first < bits.word_count(); first += words_per_page) {
    if (!bits.ChunkPresent(first)) continue;
    const uint64_t words = std::min(words_per_page, bits.word_count() - first);
    bool any = false;
    for (uint64_t i = 0; i < words; ++i) {
      const uint64_t word = bits.Load(first + i);
      any |= word != 0;
      boost::endian::store_little_u64(reinterpret_cast<uint8_t*>(page.data()) + 8 * i, word);
    }
    if (!any) continue;
    BOOST_OUTCOME_TRYV(map.WriteAt(header.bitmap_offset_bytes + first * 8,
                                   std::span(page).first(std::min<uint64_t>(
                                       kBlockBytes, header.bitmap_bytes - first * 8))));
  }
  return map.Sync();
}

}  // namespace

Result<std::unique_ptr<DeltaLayer>> WritePackedLayer(common::Storage& storage,
                                                     const DeltaPaths& paths, DeltaHeader header,
                                                     std::span<const DeltaLayer* const> sources,
                                                     const PackOptions& options) {
  static_assert(OwnershipBits::kWordsPerChunk * 8 == kBlockBytes,
                "a bitmap page is one chunk of ownership bits");
  const uint64_t words = (header.block_count + 63) / 64;
  OwnershipBits bits(words);
  for (const DeltaLayer* source : sources) {
    if (source->capacity_bytes() != header.capacity_bytes) {
      return Error(EINVAL, "{}: a source layer has capacity {} bytes, the packed layer {}",
                   paths.map, source->capacity_bytes(), header.capacity_bytes);
    }
    ForEachOwnedRun(*source, [&](uint64_t first, uint64_t count) { bits.SetRun(first, count); });
  }
  uint64_t owned = 0;
  for (uint64_t w = 0; w < words; ++w) owned += std::popcount(bits.Load(w));
  header.packed = true;
  header.clean_shutdown = true;

  common::CreatedFiles created(storage);
  BOOST_OUTCOME_TRY(data, storage.CreateExclusive(paths.data));
  created.Add(paths.data);
  BOOST_OUTCOME_TRYV(data->Truncate(owned * kBlockBytes));
  PackedCopier copier(sources, *data, options);
  uint64_t file_offset = 0;
  for (uint64_t block = 0; block < header.block_count;) {
    // Runs of the union, in ascending order: their blocks follow each other in the file.
    bool run_owned = false;
    const uint64_t run = bits.RunLength(block, header.block_count, &run_owned);
    if (run_owned) {
      BOOST_OUTCOME_TRYV(copier.CopyRun(block, run, file_offset));
      file_offset += run * kBlockBytes;
    }
    block += run;
  }
  copier.Finish();
  BOOST_OUTCOME_TRYV(data->Sync());
  BOOST_OUTCOME_TRY(map, storage.CreateExclusive(paths.map));
  created.Add(paths.map);
  BOOST_OUTCOME_TRYV(WriteMap(*map, header, bits));
  data.reset();
  map.reset();
  BOOST_OUTCOME_TRY(layer, DeltaLayer::Open(storage, paths, /*writable=*/false));
  created.Keep();
  return layer;
}

}  // namespace engine
