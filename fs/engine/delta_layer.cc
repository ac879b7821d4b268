// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/delta_layer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include <boost/endian/conversion.hpp>

namespace engine {
namespace {

using common::Error;

constexpr uint64_t kBitsPerWord = 64;

// The bitmap on disk is a little-endian bit string; words in memory are native.
uint64_t LoadWord(std::span<const std::byte> bitmap, uint64_t word) {
  uint64_t v = 0;
  size_t at = word * 8;
  std::memcpy(&v, bitmap.data() + at, std::min<size_t>(8, bitmap.size() - at));
  return boost::endian::little_to_native(v);
}

void StoreWord(std::span<std::byte> bitmap, uint64_t word, uint64_t value) {
  uint64_t le = boost::endian::native_to_little(value);
  size_t at = word * 8;
  std::memcpy(bitmap.data() + at, &le, std::min<size_t>(8, bitmap.size() - at));
}

}  // namespace

DeltaLayer::DeltaLayer(std::unique_ptr<common::File> data, std::unique_ptr<common::MappedFile> map,
                       DeltaHeader header, bool writable)
    : data_(std::move(data)),
      map_(std::move(map)),
      header_(header),
      writable_(writable),
      bits_((header.block_count + kBitsPerWord - 1) / kBitsPerWord) {}

Status DeltaLayer::LoadBitmap(const common::File& map_file) {
  auto bitmap = MappedBitmap();
  const uint64_t begin = header_.bitmap_offset_bytes;
  const uint64_t end = begin + header_.bitmap_bytes;
  uint64_t owned = 0;
  // Pages of the bitmap never written are holes in the map file: all zero, skipped
  // without being read (a new 1 TiB layer has a 32 MiB bitmap and no data in it).
  for (uint64_t pos = begin; pos < end;) {
    BOOST_OUTCOME_TRY(data_at, map_file.NextData(pos));
    if (data_at >= end) break;
    BOOST_OUTCOME_TRY(hole_at, map_file.NextHole(data_at));
    const uint64_t first_word = (data_at - begin) / 8;
    const uint64_t last_word = std::min((std::min(hole_at, end) - begin + 7) / 8, bits_.word_count());
    for (uint64_t w = first_word; w < last_word; ++w) {
      if (uint64_t word = LoadWord(bitmap, w); word != 0) {
        bits_.FetchOr(w, word);
        owned += std::popcount(word);
      }
    }
    pos = std::max(hole_at, data_at + 1);
  }
  owned_blocks_.store(owned);
  return Status::Ok();
}

DeltaLayer::~DeltaLayer() = default;

std::span<std::byte> DeltaLayer::MappedBitmap() {
  return map_->bytes().subspan(header_.bitmap_offset_bytes, header_.bitmap_bytes);
}

Result<std::unique_ptr<DeltaLayer>> DeltaLayer::Create(common::Storage& storage,
                                                       const DeltaPaths& paths,
                                                       DeltaHeader header) {
  if (header.capacity_bytes == 0 || header.capacity_bytes % 512 != 0 ||
      header.capacity_bytes > kMaxDeltaCapacityBytes) {
    return Error(EINVAL, "{}: capacity {} bytes is not a multiple of 512 up to 64 TiB", paths.map,
                 header.capacity_bytes);
  }
  header.clean_shutdown = false;  // open for writing from the start
  common::CreatedFiles created(storage);
  BOOST_OUTCOME_TRY(data, storage.CreateExclusive(paths.data));
  created.Add(paths.data);
  BOOST_OUTCOME_TRYV(data->Truncate(header.capacity_bytes));
  BOOST_OUTCOME_TRYV(data->Sync());
  BOOST_OUTCOME_TRY(map_file, storage.CreateExclusive(paths.map));
  created.Add(paths.map);
  std::vector<std::byte> head(kDeltaHeaderBytes);
  EncodeDeltaHeader(header, head);
  BOOST_OUTCOME_TRYV(map_file->Truncate(header.map_file_bytes()));
  BOOST_OUTCOME_TRYV(map_file->WriteAt(0, head));
  BOOST_OUTCOME_TRYV(map_file->Sync());
  BOOST_OUTCOME_TRY(mapped, storage.MapFile(paths.map, common::OpenMode::kReadWrite));
  created.Keep();
  return std::unique_ptr<DeltaLayer>(
      new DeltaLayer(std::move(data), std::move(mapped), header, true));
}

Result<std::unique_ptr<DeltaLayer>> DeltaLayer::Open(common::Storage& storage,
                                                     const DeltaPaths& paths, bool writable) {
  // Read-only layers map read-only: frozen layers' files are chmod a-w, and a user who
  // may only read them can still mount clones over them.
  BOOST_OUTCOME_TRY(map, storage.MapFile(paths.map, writable ? common::OpenMode::kReadWrite
                                                             : common::OpenMode::kReadOnly));
  auto parsed = ParseDeltaHeader(map->bytes());
  if (!parsed) return parsed.error().WithContext(paths.map);
  DeltaHeader header = parsed.value();
  if (map->bytes().size() < header.map_file_bytes()) {
    return Error(EIO, "{}: map file is {} bytes, the bitmap needs {}", paths.map,
                 map->bytes().size(), header.map_file_bytes());
  }
  if (header.packed && writable) {
    return Error(EROFS, "{}: a packed (frozen) layer cannot be opened for writing", paths.map);
  }
  BOOST_OUTCOME_TRY(data, storage.Open(paths.data, writable ? common::OpenMode::kReadWrite
                                                            : common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(data_size, data->Size());
  if (!header.packed && data_size != header.capacity_bytes) {
    return Error(EIO, "{}: data file is {} bytes, the layer's capacity is {}", paths.data,
                 data_size, header.capacity_bytes);
  }
  std::unique_ptr<DeltaLayer> layer(
      new DeltaLayer(std::move(data), std::move(map), header, writable));
  BOOST_OUTCOME_TRY(map_file, storage.Open(paths.map, common::OpenMode::kReadOnly));
  if (Status s = layer->LoadBitmap(*map_file); !s.ok()) return s.WithContext(paths.map);
  if (header.packed) {
    layer->rank_ = std::make_unique<BlockRank>(layer->bits_);
    const uint64_t want = layer->owned_blocks() * kBlockBytes;
    if (data_size != want) {
      return Error(EIO, "{}: packed data file is {} bytes, its {} owned blocks need {}",
                   paths.data, data_size, layer->owned_blocks(), want);
    }
  }
  layer->was_unclean_ = !header.clean_shutdown;
  if (writable) {
    // Persisted before any write: a crash from here on is seen as one.
    std::lock_guard lock(layer->flush_mutex_);
    layer->header_.clean_shutdown = false;
    BOOST_OUTCOME_TRYV(layer->PersistHeader());
  }
  return layer;
}

Result<DeltaHeader> DeltaLayer::ReadHeader(common::Storage& storage, const std::string& map_path) {
  BOOST_OUTCOME_TRY(file, storage.Open(map_path, common::OpenMode::kReadOnly));
  std::vector<std::byte> head(kDeltaHeaderBytes);
  BOOST_OUTCOME_TRYV(file->ReadExactAt(0, head, "delta header"));
  auto parsed = ParseDeltaHeader(head);
  if (!parsed) return parsed.error().WithContext(map_path);
  return parsed.value();
}

DeltaHeader DeltaLayer::header() const {
  std::lock_guard lock(flush_mutex_);
  return header_;
}

uint64_t DeltaLayer::BlockLength(uint64_t block) const {
  uint64_t start = block * kBlockBytes;
  return std::min<uint64_t>(kBlockBytes, header_.capacity_bytes - start);
}

bool DeltaLayer::IsOwned(uint64_t block) const {
  return (bits_.Load(block / kBitsPerWord) >> (block % kBitsPerWord)) & 1;
}

uint64_t DeltaLayer::RunLength(uint64_t first, uint64_t max_blocks, bool* owned_out) const {
  return bits_.RunLength(first, std::min(first + max_blocks, header_.block_count), owned_out);
}

void DeltaLayer::MarkOwned(uint64_t first_block, uint64_t count) {
  std::lock_guard lock(marks_mutex_);
  for (uint64_t block = first_block; block < first_block + count;) {
    uint64_t word = block / kBitsPerWord;
    uint64_t bit = block % kBitsPerWord;
    uint64_t n = std::min(kBitsPerWord - bit, first_block + count - block);
    uint64_t mask = (n == kBitsPerWord ? ~uint64_t{0} : ((uint64_t{1} << n) - 1)) << bit;
    uint64_t before = bits_.FetchOr(word, mask);
    owned_blocks_.fetch_add(std::popcount(mask & ~before), std::memory_order_relaxed);
    if ((before & mask) != mask) dirty_words_.insert(word);
    block += n;
  }
}

bool DeltaLayer::HasUnflushedMarks() const {
  std::lock_guard lock(marks_mutex_);
  return !dirty_words_.empty();
}

Status DeltaLayer::ReadData(uint64_t offset_bytes, std::span<std::byte> dst) const {
  if (!header_.packed) return data_->ReadExactAt(offset_bytes, dst, "delta data");
  if (dst.empty()) return Status::Ok();
  BOOST_OUTCOME_TRY(place, Place(offset_bytes));
  if (offset_bytes + dst.size() > place.run_end) {
    return Error(EINVAL, "{}: read of {} bytes at {} runs past the layer's owned blocks",
                 data_->path(), dst.size(), offset_bytes);
  }
  return data_->ReadExactAt(place.file_offset, dst, "packed layer data");
}

bool DeltaLayer::ReadCachedData(uint64_t offset_bytes, std::span<std::byte> dst) const {
  if (!header_.packed) return data_->ReadCachedAt(offset_bytes, dst);
  auto place = Place(offset_bytes);
  if (!place || offset_bytes + dst.size() > place.value().run_end) return false;
  return data_->ReadCachedAt(place.value().file_offset, dst);
}

Result<DeltaLayer::PackedPlace> DeltaLayer::Place(uint64_t offset_bytes) const {
  const uint64_t block = offset_bytes / kBlockBytes;
  bool owned = false;
  const uint64_t run = block < header_.block_count
                           ? RunLength(block, header_.block_count - block, &owned)
                           : 0;
  if (!owned) {
    return Error(EINVAL, "{}: byte {} is not in a block the packed layer owns", data_->path(),
                 offset_bytes);
  }
  return PackedPlace{rank_->OwnedBefore(block) * kBlockBytes + offset_bytes % kBlockBytes,
                     std::min((block + run) * kBlockBytes, header_.capacity_bytes)};
}

Result<uint64_t> DeltaLayer::PackedSeek(uint64_t offset_bytes, bool data) const {
  if (offset_bytes >= header_.capacity_bytes) return header_.capacity_bytes;
  BOOST_OUTCOME_TRY(place, Place(offset_bytes));
  // Within the run, file offsets follow virtual ones one for one.
  const uint64_t file_end = place.file_offset + (place.run_end - offset_bytes);
  BOOST_OUTCOME_TRY(at, data ? data_->NextData(place.file_offset)
                             : data_->NextHole(place.file_offset));
  return offset_bytes + (std::min(at, file_end) - place.file_offset);
}

Status DeltaLayer::WriteData(uint64_t offset_bytes, std::span<const std::byte> src) {
  return data_->WriteAt(offset_bytes, src);
}

Status DeltaLayer::PunchData(uint64_t offset_bytes, uint64_t length_bytes) {
  return data_->PunchHole(offset_bytes, length_bytes);
}

Result<uint64_t> DeltaLayer::NextData(uint64_t offset_bytes) const {
  if (header_.packed) return PackedSeek(offset_bytes, /*data=*/true);
  BOOST_OUTCOME_TRY(at, data_->NextData(offset_bytes));
  return std::min(at, header_.capacity_bytes);
}

Result<uint64_t> DeltaLayer::NextHole(uint64_t offset_bytes) const {
  if (header_.packed) return PackedSeek(offset_bytes, /*data=*/false);
  BOOST_OUTCOME_TRY(at, data_->NextHole(offset_bytes));
  return std::min(at, header_.capacity_bytes);
}

Status DeltaLayer::PersistHeader() {
  auto head = map_->bytes().first(kDeltaHeaderBytes);
  EncodeDeltaHeader(header_, head);
  return map_->Flush(0, kDeltaHeaderBytes);
}

Status DeltaLayer::Flush() {
  if (!writable_) return Status::Ok();
  std::lock_guard flush_lock(flush_mutex_);
  if (!sync_failure_.ok()) return sync_failure_;
  // Snapshot the words marked so far. Their data was written before they were marked,
  // so the fdatasync below covers it; marks made after the snapshot wait for the next
  // Flush.
  std::vector<std::pair<uint64_t, uint64_t>> snapshot;
  {
    std::lock_guard lock(marks_mutex_);
    snapshot.reserve(dirty_words_.size());
    for (uint64_t w : dirty_words_) snapshot.emplace_back(w, bits_.Load(w));
    dirty_words_.clear();
  }
  // Data first: a bit must never reach the disk before the data it points at.
  Status synced = data_->Sync();
  if (!synced.ok()) {
    sync_failure_ = synced.WithContext("an earlier fdatasync failed, so writes since the "
                                       "last flush may be lost");
  }
  if (synced.ok() && !snapshot.empty()) {
    std::sort(snapshot.begin(), snapshot.end());
    // The bytes of the map file that change, one range per run of nearby words.
    std::vector<std::pair<uint64_t, uint64_t>> ranges;  // offset, length in bytes
    for (size_t i = 0; i < snapshot.size();) {
      uint64_t first = snapshot[i].first, last = first;
      while (i + 1 < snapshot.size() && (snapshot[i + 1].first - last) * 8 < kBlockBytes) {
        last = snapshot[++i].first;
      }
      ++i;
      ranges.emplace_back(header_.bitmap_offset_bytes + first * 8, (last - first + 1) * 8);
    }
    // Bitmap pages stay holes in the map file until a bit in them is first persisted.
    // Storing into a hole on a full file system is a SIGBUS, which would kill the
    // daemon; reserving the pages first turns that into this flush's ENOSPC.
    for (const auto& [offset, length] : ranges) {
      if (synced.ok()) synced = map_->Reserve(offset, length);
    }
    if (synced.ok()) {
      auto bitmap = MappedBitmap();
      for (const auto& [w, value] : snapshot) StoreWord(bitmap, w, value);
      for (const auto& [offset, length] : ranges) {
        if (synced.ok()) synced = map_->Flush(offset, length);
      }
    }
    if (synced.ok()) {
      ++header_.generation;
      synced = PersistHeader();
    }
  }
  if (!synced.ok()) {
    // Nothing was lost from memory; mark the words dirty again so a later Flush retries.
    std::lock_guard lock(marks_mutex_);
    for (const auto& [w, value] : snapshot) dirty_words_.insert(w);
  }
  return synced;
}

Status DeltaLayer::Close() {
  if (!writable_) return Status::Ok();
  BOOST_OUTCOME_TRYV(Flush());
  std::lock_guard lock(flush_mutex_);
  header_.clean_shutdown = true;
  BOOST_OUTCOME_TRYV(PersistHeader());
  writable_ = false;
  return Status::Ok();
}

}  // namespace engine
