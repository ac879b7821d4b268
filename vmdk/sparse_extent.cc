// SPDX-License-Identifier: Apache-2.0
#include "vmdk/sparse_extent.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>

#include <boost/endian/conversion.hpp>

#include "vmdk/cowd_header.h"

namespace vmdk {
namespace {

using common::Error;

// Grain tables held in memory per extent. 8 MiB covers 4,096 default tables, i.e. the
// maps of 128 GiB of disk, while keeping a 2 TiB disk's reader far under 64 MiB.
constexpr uint64_t kTableCacheBytes = 8 << 20;
// Largest grain directory read into memory: 64 MiB holds 16 Mi entries, 8x what a
// 64 TiB disk with default geometry needs; larger ones only come from corrupt headers.
constexpr uint64_t kMaxDirectoryBytes = 64 << 20;
// The SESparse constant-header magic (first u64).
constexpr uint64_t kSeSparseMagic = 0x00000000cafebabeULL;

std::string Hex(uint64_t v) { return fmt::format("{:#x}", v); }

Result<std::vector<uint32_t>> ReadU32Array(const common::File& file, uint64_t offset_bytes,
                                           uint64_t count, std::string_view what) {
  std::vector<uint32_t> values(count);
  BOOST_OUTCOME_TRYV(file.ReadExactAt(
      offset_bytes, std::as_writable_bytes(std::span(values)), what));
  for (auto& v : values) boost::endian::little_to_native_inplace(v);
  return values;
}

// Each thread remembers the last compressed grain it inflated, so that small reads
// walking through one grain (a FUSE read of 4 KiB at a time) inflate it once.
struct InflatedGrain {
  uint64_t extent_id = 0;
  uint64_t grain = 0;
  std::vector<std::byte> data;
};
thread_local InflatedGrain t_last_inflated;
std::atomic<uint64_t> g_next_extent_id{1};

}  // namespace

Result<SparseHeader> ReadHostedHeader(const common::File& file, uint64_t file_size) {
  std::array<std::byte, 512> sector;
  BOOST_OUTCOME_TRYV(file.ReadExactAt(0, sector, "sparse header"));
  auto header = ParseSparseHeader(sector);
  if (!header) return header.error().WithContext(file.path());
  if (!header.value().gd_at_end()) return header;

  // A stream written front to back: the real header is the footer, which sits between a
  // footer marker and the end-of-stream marker in the last three sectors.
  if (!header.value().compressed() || file_size < 4 * 512) {
    return Error(EIO, "{}: grain directory is at the end but the file has no footer",
                 file.path());
  }
  std::array<std::byte, 3 * 512> tail;
  BOOST_OUTCOME_TRYV(file.ReadExactAt(file_size - tail.size(), tail, "stream footer"));
  Marker footer_marker = ParseMarker(std::span(tail).first(16));
  Marker eos = ParseMarker(std::span(tail).subspan(1024, 16));
  if (footer_marker.size != 0 || footer_marker.type != uint32_t(MarkerType::kFooter) ||
      eos.size != 0 || eos.type != uint32_t(MarkerType::kEndOfStream) || eos.value != 0) {
    return Error(EIO, "{}: stream footer not found in the last 1536 bytes (file truncated?)",
                 file.path());
  }
  auto footer = ParseSparseHeader(std::span(tail).subspan(512, 512));
  if (!footer) return footer.error().WithContext(fmt::format("{}: stream footer", file.path()));
  if (footer.value().gd_at_end()) {
    return Error(EIO, "{}: stream footer has no grain directory offset", file.path());
  }
  return footer;
}

SparseExtent::SparseExtent(std::unique_ptr<common::File> file, uint64_t file_size,
                           GrainGeometry geometry, uint64_t extent_size_bytes)
    : file_(std::move(file)),
      file_size_(file_size),
      geo_(geometry),
      size_bytes_(extent_size_bytes),
      id_(g_next_extent_id++),
      tables_(std::max<uint64_t>(1, kTableCacheBytes / (uint64_t{geometry.gtes_per_gt} * 4))) {}

Result<std::unique_ptr<SparseExtent>> SparseExtent::Open(std::unique_ptr<common::File> file,
                                                         uint64_t extent_size_bytes) {
  BOOST_OUTCOME_TRY(file_size, file->Size());
  std::array<std::byte, kCowdHeaderBytes> head{};
  BOOST_OUTCOME_TRY(got, file->ReadAt(0, head));
  if (got < 8) return Error(EIO, "{}: {} bytes, too short for a sparse extent", file->path(), got);
  uint32_t magic32;
  uint64_t magic64;
  std::memcpy(&magic32, head.data(), 4);
  std::memcpy(&magic64, head.data(), 8);
  boost::endian::little_to_native_inplace(magic32);
  boost::endian::little_to_native_inplace(magic64);

  GrainGeometry geo;
  ExtentDetails details;
  std::vector<std::string> warnings;
  if (magic32 == kSparseMagic) {
    BOOST_OUTCOME_TRY(h, ReadHostedHeader(*file, file_size));
    if (h.compressed() && !h.has_markers()) {
      return Error(ENOTSUP, "{}: compressed grains without grain markers are not supported",
                   file->path());
    }
    geo.header_capacity_bytes = h.capacity_sectors * 512;
    geo.grain_bytes = h.grain_bytes();
    geo.gtes_per_gt = h.num_gtes_per_gt;
    geo.gd_offset_bytes = h.gd_offset_sectors * 512;
    geo.gd_entries = h.gd_entries();
    // Sector 1 can never hold a grain, so 1 is read as "zeroed" whatever the version
    // (VMware's open-vmdk does the same; QEMU writes it only with flag bit 2).
    geo.zeroed_gte = true;
    geo.compressed = h.compressed();
    geo.first_data_byte = 512;
    details = {{"format", "KDMV"},
               {"version", std::to_string(h.version)},
               {"flags", Hex(h.flags)},
               {"grain_bytes", std::to_string(geo.grain_bytes)},
               {"gtes_per_gt", std::to_string(h.num_gtes_per_gt)},
               {"gd_offset_bytes", std::to_string(geo.gd_offset_bytes)},
               {"compressed", h.compressed() ? "zlib" : "no"},
               {"header_capacity_bytes", std::to_string(geo.header_capacity_bytes)}};
    if (h.unclean_shutdown) {
      warnings.push_back(fmt::format("{}: unclean-shutdown flag is set (last writer crashed)",
                                     file->path()));
    }
  } else if (magic32 == kCowdMagic) {
    if (got < kCowdHeaderBytes) {
      return Error(EIO, "{}: COWD header: file is {} bytes, need {}", file->path(), got,
                   kCowdHeaderBytes);
    }
    auto parsed = ParseCowdHeader(head);
    if (!parsed) return parsed.error().WithContext(file->path());
    const CowdHeader& h = parsed.value();
    geo.header_capacity_bytes = uint64_t{h.capacity_sectors} * 512;
    geo.grain_bytes = h.grain_bytes();
    geo.gtes_per_gt = kCowdGtesPerGt;
    geo.gd_offset_bytes = uint64_t{h.gd_offset_sectors} * 512;
    geo.gd_entries = h.required_gd_entries();
    geo.zeroed_gte = false;
    geo.compressed = false;
    geo.first_data_byte = kCowdHeaderBytes;
    details = {{"format", "COWD"},
               {"grain_bytes", std::to_string(geo.grain_bytes)},
               {"gtes_per_gt", std::to_string(kCowdGtesPerGt)},
               {"gd_offset_bytes", std::to_string(geo.gd_offset_bytes)},
               {"header_capacity_bytes", std::to_string(geo.header_capacity_bytes)}};
    if (h.unclean_shutdown) {
      warnings.push_back(fmt::format("{}: unclean-shutdown flag is set (last writer crashed)",
                                     file->path()));
    }
  } else if (magic64 == kSeSparseMagic) {
    return Error(ENOTSUP, "{}: SESparse extents are not supported", file->path());
  } else {
    return Error(EIO, "{}: not a sparse extent (magic {:#010x})", file->path(), magic32);
  }

  if (geo.header_capacity_bytes != extent_size_bytes) {
    warnings.push_back(fmt::format(
        "{}: header capacity {} bytes differs from the descriptor's extent size {} bytes",
        file->path(), geo.header_capacity_bytes, extent_size_bytes));
  }
  std::unique_ptr<SparseExtent> extent(
      new SparseExtent(std::move(file), file_size, geo, extent_size_bytes));
  extent->details_ = std::move(details);
  extent->warnings_ = std::move(warnings);
  BOOST_OUTCOME_TRYV(extent->LoadDirectory());
  return extent;
}

Status SparseExtent::LoadDirectory() {
  uint64_t gd_bytes = geo_.gd_entries * 4;
  if (gd_bytes > kMaxDirectoryBytes) {
    return Error(EIO, "{}: grain directory of {} entries exceeds the {} MiB limit",
                 file_->path(), geo_.gd_entries, kMaxDirectoryBytes >> 20);
  }
  if (geo_.gd_entries == 0) return Status::Ok();
  if (geo_.gd_offset_bytes < geo_.first_data_byte || geo_.gd_offset_bytes > file_size_ ||
      gd_bytes > file_size_ - geo_.gd_offset_bytes) {
    return Error(EIO, "{}: grain directory at byte {} ({} entries) lies outside the file "
                 "({} bytes)", file_->path(), geo_.gd_offset_bytes, geo_.gd_entries, file_size_);
  }
  BOOST_OUTCOME_TRY(directory, ReadU32Array(*file_, geo_.gd_offset_bytes, geo_.gd_entries,
                                            "grain directory"));
  const uint64_t gt_bytes = uint64_t{geo_.gtes_per_gt} * 4;
  for (uint64_t i = 0; i < directory.size(); ++i) {
    uint64_t at = uint64_t{directory[i]} * 512;
    if (directory[i] != 0 && (at < geo_.first_data_byte || at > file_size_ ||
                              gt_bytes > file_size_ - at)) {
      return Error(EIO, "{}: grain directory entry {} points at sector {}, outside the file "
                   "({} bytes)", file_->path(), i, directory[i], file_size_);
    }
  }
  // Real files give every table its own place. Refusing tables that overlap bounds the
  // allocated grains by the file size, so walking a hostile file's map costs time in
  // proportion to the file, not to the (up to 64 TiB) capacity it claims.
  std::vector<std::pair<uint32_t, uint64_t>> placed;  // (sector, directory index)
  for (uint64_t i = 0; i < directory.size(); ++i) {
    if (directory[i] != 0) placed.emplace_back(directory[i], i);
  }
  std::sort(placed.begin(), placed.end());
  for (size_t k = 1; k < placed.size(); ++k) {
    if (uint64_t{placed[k].first - placed[k - 1].first} * 512 < gt_bytes) {
      return Error(EIO, "{}: grain directory entries {} and {} point at overlapping grain "
                   "tables (sectors {} and {})", file_->path(), placed[k - 1].second,
                   placed[k].second, placed[k - 1].first, placed[k].first);
    }
  }
  directory_ = std::move(directory);
  return Status::Ok();
}

uint64_t SparseExtent::GrainValidBytes(uint64_t grain) const {
  uint64_t start = grain * geo_.grain_bytes;
  if (start >= geo_.header_capacity_bytes) return 0;
  return std::min(geo_.grain_bytes, geo_.header_capacity_bytes - start);
}

Result<GrainTable> SparseExtent::LoadTable(uint64_t gd_index) const {
  uint64_t at = uint64_t{directory_[gd_index]} * 512;
  BOOST_OUTCOME_TRY(table, ReadU32Array(*file_, at, geo_.gtes_per_gt,
                                        fmt::format("grain table {}", gd_index)));
  // Every entry is checked once here, so reads can trust the table.
  for (uint64_t i = 0; i < table.size(); ++i) {
    uint32_t gte = table[i];
    if (gte == 0 || (gte == 1 && geo_.zeroed_gte)) continue;
    uint64_t grain = gd_index * geo_.gtes_per_gt + i;
    uint64_t valid = GrainValidBytes(grain);
    if (valid == 0) continue;  // past the capacity: never read
    uint64_t pos = uint64_t{gte} * 512;
    uint64_t need = geo_.compressed ? kGrainMarkerHeaderBytes : valid;
    if (pos < geo_.first_data_byte || pos > file_size_ || need > file_size_ - pos) {
      return Error(EIO, "{}: grain table {} entry {} (grain {}) points at sector {}, {} ({} "
                   "bytes)", file_->path(), gd_index, i, grain, gte,
                   pos < geo_.first_data_byte ? "inside the header" : "outside the file",
                   file_size_);
    }
  }
  return table;
}

Result<uint32_t> SparseExtent::LookupGte(uint64_t grain, std::shared_ptr<const GrainTable>& table,
                                         uint64_t& table_index) const {
  uint64_t gd_index = grain / geo_.gtes_per_gt;
  if (gd_index >= directory_.size() || directory_[gd_index] == 0) return 0u;
  if (!table || table_index != gd_index) {
    BOOST_OUTCOME_TRY(loaded, tables_.Get(gd_index, [this](uint64_t i) { return LoadTable(i); }));
    table = std::move(loaded);
    table_index = gd_index;
  }
  return (*table)[grain % geo_.gtes_per_gt];
}

Result<Mapping> SparseExtent::Map(uint64_t offset_bytes, uint64_t max_length_bytes) const {
  if (offset_bytes >= size_bytes_ || max_length_bytes == 0) {
    return Error(EINVAL, "{}: map at byte {} outside the extent ({} bytes)", file_->path(),
                 offset_bytes, size_bytes_);
  }
  const uint64_t end = offset_bytes + std::min(max_length_bytes, size_bytes_ - offset_bytes);
  const uint64_t grains_per_table = uint64_t{geo_.gtes_per_gt};
  std::shared_ptr<const GrainTable> table;
  uint64_t table_index = 0;
  std::optional<BlockState> run_state;
  uint64_t pos = offset_bytes;
  while (pos < end) {
    uint64_t grain = pos / geo_.grain_bytes;
    uint64_t next = (grain + 1) * geo_.grain_bytes;
    BlockState state = BlockState::kUnallocated;
    uint64_t gd_index = grain / grains_per_table;
    if (pos >= geo_.header_capacity_bytes) {
      next = end;  // nothing is stored past the header's capacity
    } else if (gd_index >= directory_.size() || directory_[gd_index] == 0) {
      next = (gd_index + 1) * grains_per_table * geo_.grain_bytes;  // whole table absent
    } else {
      BOOST_OUTCOME_TRY(gte, LookupGte(grain, table, table_index));
      if (gte == 1 && geo_.zeroed_gte) {
        state = BlockState::kZero;
      } else if (gte != 0) {
        state = BlockState::kData;
      }
    }
    if (!run_state) {
      run_state = state;
    } else if (*run_state != state) {
      break;
    }
    pos = next;
  }
  return Mapping{*run_state, std::min(pos, end) - offset_bytes};
}

Status SparseExtent::Read(uint64_t offset_bytes, std::span<std::byte> dst) const {
  if (offset_bytes > size_bytes_ || dst.size() > size_bytes_ - offset_bytes) {
    return Error(EINVAL, "{}: read of {} bytes at byte {} outside the extent ({} bytes)",
                 file_->path(), dst.size(), offset_bytes, size_bytes_);
  }
  std::shared_ptr<const GrainTable> table;
  uint64_t table_index = 0;
  // Uncompressed grains that follow each other in the file are read with one pread.
  uint64_t run_file_pos = 0;
  size_t run_dst = 0, run_len = 0;
  auto flush_run = [&]() -> Status {
    if (run_len == 0) return Status::Ok();
    size_t len = std::exchange(run_len, 0);
    return file_->ReadExactAt(run_file_pos, dst.subspan(run_dst, len), "grain data");
  };

  size_t done = 0;
  while (done < dst.size()) {
    uint64_t pos = offset_bytes + done;
    uint64_t grain = pos / geo_.grain_bytes;
    uint64_t in_grain = pos % geo_.grain_bytes;
    size_t n = std::min<uint64_t>(geo_.grain_bytes - in_grain, dst.size() - done);
    auto out = dst.subspan(done, n);
    uint32_t gte = 0;
    if (pos < geo_.header_capacity_bytes) {
      BOOST_OUTCOME_TRY(found, LookupGte(grain, table, table_index));
      gte = found;
    }
    if (gte == 0 || (gte == 1 && geo_.zeroed_gte)) {
      BOOST_OUTCOME_TRYV(flush_run());
      std::memset(out.data(), 0, n);
    } else if (geo_.compressed) {
      BOOST_OUTCOME_TRYV(flush_run());
      BOOST_OUTCOME_TRYV(ReadCompressedGrain(grain, gte, in_grain, out));
    } else {
      // Bytes of the grain past the header's capacity are not stored: zeros.
      uint64_t valid = GrainValidBytes(grain);
      size_t stored = in_grain >= valid ? 0 : std::min<uint64_t>(n, valid - in_grain);
      uint64_t file_pos = uint64_t{gte} * 512 + in_grain;
      if (run_len != 0 && run_file_pos + run_len == file_pos && run_dst + run_len == done) {
        run_len += stored;
      } else {
        BOOST_OUTCOME_TRYV(flush_run());
        run_file_pos = file_pos;
        run_dst = done;
        run_len = stored;
      }
      if (stored < n) {
        BOOST_OUTCOME_TRYV(flush_run());
        std::memset(out.data() + stored, 0, n - stored);
      }
    }
    done += n;
  }
  return flush_run();
}

Status SparseExtent::ReadCompressedGrain(uint64_t grain, uint32_t gte, uint64_t in_grain_bytes,
                                         std::span<std::byte> dst) const {
  InflatedGrain& memo = t_last_inflated;
  if (memo.extent_id != id_ || memo.grain != grain) {
    memo.extent_id = 0;  // invalid until this inflate succeeds
    const uint64_t marker_pos = uint64_t{gte} * 512;
    std::array<std::byte, kGrainMarkerHeaderBytes> head;
    BOOST_OUTCOME_TRYV(file_->ReadExactAt(marker_pos, head, "grain marker"));
    uint64_t lba;
    uint32_t size;
    std::memcpy(&lba, head.data(), 8);
    std::memcpy(&size, head.data() + 8, 4);
    boost::endian::little_to_native_inplace(lba);
    boost::endian::little_to_native_inplace(size);
    const uint64_t expected_lba = grain * (geo_.grain_bytes / 512);
    if (lba != expected_lba) {
      return Error(EIO, "{}: grain marker at sector {} is for sector {}, expected {}",
                   file_->path(), gte, lba, expected_lba);
    }
    // zlib output of incompressible data exceeds its input by a few bytes per 16 KiB
    // block, so twice the grain bounds any honest size.
    const uint64_t max_size = 2 * geo_.grain_bytes;
    const uint64_t data_pos = marker_pos + kGrainMarkerHeaderBytes;
    if (size == 0 || size > max_size || size > file_size_ - data_pos) {
      return Error(EIO, "{}: compressed grain at sector {} claims {} bytes (at most {}, and "
                   "the file ends {} bytes later)", file_->path(), gte, size, max_size,
                   file_size_ - data_pos);
    }
    thread_local std::vector<std::byte> compressed;
    compressed.resize(size);
    BOOST_OUTCOME_TRYV(file_->ReadExactAt(data_pos, compressed, "compressed grain"));
    memo.data.resize(geo_.grain_bytes);
    uLongf out_len = geo_.grain_bytes;
    uLong in_len = size;
    int rc = uncompress2(reinterpret_cast<Bytef*>(memo.data.data()), &out_len,
                         reinterpret_cast<const Bytef*>(compressed.data()), &in_len);
    if (rc != Z_OK) {
      return Error(EIO, "{}: compressed grain at sector {} does not inflate ({})",
                   file_->path(), gte, rc == Z_BUF_ERROR ? "truncated, or larger than a grain"
                                                         : zError(rc));
    }
    if (out_len < GrainValidBytes(grain)) {
      return Error(EIO, "{}: compressed grain at sector {} inflates to {} bytes, expected {}",
                   file_->path(), gte, out_len, GrainValidBytes(grain));
    }
    std::memset(memo.data.data() + out_len, 0, geo_.grain_bytes - out_len);
    memo.extent_id = id_;
    memo.grain = grain;
  }
  std::memcpy(dst.data(), memo.data.data() + in_grain_bytes, dst.size());
  return Status::Ok();
}

}  // namespace vmdk

namespace vmdk {

Status SparseExtent::CheckTables() const {
  for (uint64_t i = 0; i < directory_.size(); ++i) {
    if (directory_[i] == 0) continue;
    BOOST_OUTCOME_TRY(table, LoadTable(i));
    (void)table;
  }
  return Status::Ok();
}

}  // namespace vmdk
