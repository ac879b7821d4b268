// SPDX-License-Identifier: Apache-2.0
#include "vmdk/sparse_writer.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/endian/buffers.hpp>
#include <fmt/format.h>

#include "common/copy_buffer.h"
#include "common/worker_pool.h"
#include "vmdk/flat_descriptor.h"
#include "vmdk/mapping.h"
#include "vmdk/sparse_header.h"

namespace vmdk {
namespace {

using boost::endian::little_uint32_buf_t;
using common::Error;

constexpr uint64_t kGrainBytes = kWriterGrainSectors * kSectorBytes;
constexpr uint64_t kTableSpanBytes = kGrainBytes * kWriterGtesPerGt;   // 32 MiB
constexpr uint64_t kTableBytes = kWriterGtesPerGt * sizeof(uint32_t);  // 2 KiB
constexpr uint64_t kTableSectors = kTableBytes / kSectorBytes;
constexpr uint64_t kDescriptorOffsetSectors = 1;
// GTEs and GDEs are 32-bit sector numbers: nothing they point at can lie at or past 2^32
// sectors (2 TiB) of file.
constexpr uint64_t kMaxFileSectors = uint64_t{1} << 32;

uint64_t DivRoundUp(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Where everything goes in the file (sectors), as described in sparse_writer.h.
struct Layout {
  uint64_t capacity_bytes = 0;
  uint64_t tables = 0;             // grain tables = directory entries
  uint64_t directory_sectors = 0;  // one directory (GD or RGD)
  uint64_t rgd_sector = 0;
  uint64_t rgt_sector = 0;  // the first redundant grain table
  uint64_t gd_sector = 0;
  uint64_t gt_sector = 0;  // the first grain table
  uint64_t overhead_sectors = 0;
};

Layout PlanLayout(uint64_t capacity_bytes) {
  Layout l;
  l.capacity_bytes = capacity_bytes;
  const uint64_t grains = DivRoundUp(capacity_bytes, kGrainBytes);
  l.tables = DivRoundUp(grains, kWriterGtesPerGt);
  l.directory_sectors = DivRoundUp(l.tables * sizeof(uint32_t), kSectorBytes);
  l.rgd_sector = kDescriptorOffsetSectors + kWriterDescriptorSectors;
  l.rgt_sector = l.rgd_sector + l.directory_sectors;
  l.gd_sector = l.rgt_sector + l.tables * kTableSectors;
  l.gt_sector = l.gd_sector + l.directory_sectors;
  l.overhead_sectors =
      DivRoundUp(l.gt_sector + l.tables * kTableSectors, kWriterGrainSectors) * kWriterGrainSectors;
  return l;
}

// Has the device write grains back while the workers read on (File::StartWriteback), so
// that the final Sync has little left to do. From a thread of its own: sync_file_range
// waits when the device is busy, and the workers must not.
class WritebackThread {
 public:
  explicit WritebackThread(common::File& out) : out_(out), thread_([this] { Run(); }) {}
  ~WritebackThread() { Stop(); }
  WritebackThread(const WritebackThread&) = delete;
  WritebackThread& operator=(const WritebackThread&) = delete;

  void Add(uint64_t offset_bytes, uint64_t length_bytes) {
    {
      std::lock_guard lock(mutex_);
      ranges_.emplace_back(offset_bytes, length_bytes);
    }
    wake_.notify_one();
  }
  // Returns once the thread has stopped; ranges not started yet are left to Sync.
  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return stop_ || !ranges_.empty(); });
      if (stop_) return;
      std::vector<std::pair<uint64_t, uint64_t>> batch;
      batch.swap(ranges_);
      lock.unlock();
      // Only a hint: a write error surfaces at the final Sync.
      for (const auto& [offset, length] : batch) (void)out_.StartWriteback(offset, length);
      lock.lock();
    }
  }

  common::File& out_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // guarded by mutex_
  bool stop_ = false;                                  // guarded by mutex_
  std::thread thread_;  // last: starts once the members it uses exist
};

// Copies the source's data into grains and fills the grain tables. Work is handed out one
// grain table (32 MiB of the disk) at a time, so each table is filled by one worker and
// written once, when that worker is done with it; file space for grains is taken from a
// shared counter, so grains land in the file in the order workers write them.
class Copier {
 public:
  Copier(const DiskSource& source, common::File& out, const Layout& layout,
         const SparseWriteOptions& options)
      : source_(source),
        out_(out),
        layout_(layout),
        options_(options),
        piece_grains_(std::max<uint64_t>(1, options.read_bytes / kGrainBytes)) {}

  // Copies everything; returns the first failure (the other workers stop at once).
  Status Run() {
    WritebackThread writeback(out_);
    writeback_ = &writeback;
    common::RunWorkers(
        options_.threads, [this] { Work(); },
        [this] {
          if (options_.progress) options_.progress(done_bytes_.load());
        });
    writeback.Stop();  // before the caller syncs, or removes, the file
    writeback_ = nullptr;
    std::lock_guard lock(mutex_);
    return first_error_;
  }

  uint64_t grains_written() const { return grains_written_.load(); }

 private:
  // One grain table's share of the disk, and the grains in it that may hold data.
  struct Unit {
    uint64_t table = 0;
    std::vector<std::pair<uint64_t, uint64_t>> grain_runs;  // [first, end) grain numbers
  };

  void Work() {
    common::AlignedBuffer buffer(piece_grains_ * kGrainBytes);
    if (!buffer.ok()) {
      Fail(Error(ENOMEM, "{}: no memory for a copy buffer", out_.path()));
      return;
    }
    std::vector<uint64_t> kept(piece_grains_);
    while (!Stopped()) {
      auto unit = Claim();
      if (!unit) {
        Fail(unit.error());
        return;
      }
      if (!unit.value()) return;
      if (Status s = CopyUnit(*unit.value(), buffer.span(), kept); !s.ok()) {
        Fail(s);
        return;
      }
    }
  }

  // True once a worker failed or the caller cancelled (then records ECANCELED).
  bool Stopped() {
    if (options_.cancel && options_.cancel->load()) {
      Fail(Error(ECANCELED, "{}: interrupted", out_.path()));
    }
    return stopped_.load();
  }

  void Fail(Status status) {
    std::lock_guard lock(mutex_);
    if (first_error_.ok()) first_error_ = std::move(status);
    stopped_ = true;
  }

  // The next unit holding data, or nullopt when the whole disk is handed out. Walks the
  // source's allocation once, front to back, whichever worker asks.
  Result<std::optional<Unit>> Claim() {
    std::lock_guard lock(mutex_);
    const uint64_t capacity = layout_.capacity_bytes;
    if (!extent_) {
      BOOST_OUTCOME_TRYV(LoadNextExtent());
    }
    if (!extent_) {
      done_bytes_ += capacity - claimed_until_;  // the holes after the last data
      claimed_until_ = capacity;
      return std::optional<Unit>();
    }
    Unit unit;
    unit.table = std::max(extent_->first, claimed_until_) / kTableSpanBytes;
    const uint64_t start = unit.table * kTableSpanBytes;
    const uint64_t end = std::min(start + kTableSpanBytes, capacity);
    while (extent_ && extent_->first < end) {
      const uint64_t first = std::max(extent_->first, start) / kGrainBytes;
      const uint64_t last = DivRoundUp(std::min(extent_->second, end), kGrainBytes);
      // Two data runs can share a grain: it is read and written once.
      if (!unit.grain_runs.empty() && unit.grain_runs.back().second >= first) {
        unit.grain_runs.back().second = std::max(unit.grain_runs.back().second, last);
      } else {
        unit.grain_runs.emplace_back(first, last);
      }
      if (extent_->second > end) break;  // it goes on in the next table's unit
      scan_pos_ = extent_->second;
      extent_.reset();
      BOOST_OUTCOME_TRYV(LoadNextExtent());
    }
    done_bytes_ += start - claimed_until_;  // the holes skipped to get here
    claimed_until_ = end;
    return std::optional<Unit>(std::move(unit));
  }

  // The next data run of the source at or after scan_pos_ into extent_ (none at the end).
  Status LoadNextExtent() {
    const uint64_t capacity = layout_.capacity_bytes;
    if (scan_pos_ >= capacity) return Status::Ok();
    BOOST_OUTCOME_TRY(data, source_.NextData(scan_pos_));
    if (data >= capacity) {
      scan_pos_ = capacity;
      return Status::Ok();
    }
    BOOST_OUTCOME_TRY(hole, source_.NextHole(data));
    // A source contradicting itself (a hole where it just said data) still moves on.
    if (hole <= data) hole = data + kGrainBytes;
    extent_ = std::pair(data, std::min(hole, capacity));
    return Status::Ok();
  }

  Status CopyUnit(const Unit& unit, std::span<std::byte> buffer, std::vector<uint64_t>& kept) {
    const uint64_t capacity = layout_.capacity_bytes;
    const uint64_t unit_end = std::min((unit.table + 1) * kTableSpanBytes, capacity);
    std::array<uint32_t, kWriterGtesPerGt> table{};
    bool table_used = false;
    uint64_t reported = unit.table * kTableSpanBytes;
    for (const auto& [first, last] : unit.grain_runs) {
      for (uint64_t grain = first; grain < last;) {
        if (Stopped()) return Status::Ok();  // the cause is recorded already
        const uint64_t count = std::min(piece_grains_, last - grain);
        const uint64_t offset = grain * kGrainBytes;
        const uint64_t end = std::min(offset + count * kGrainBytes, capacity);
        auto piece = buffer.first(count * kGrainBytes);
        BOOST_OUTCOME_TRYV(source_.Read(offset, piece.first(end - offset)));
        // The last grain of a disk whose capacity is not a whole number of grains.
        std::memset(piece.data() + (end - offset), 0, piece.size() - (end - offset));

        // All-zero grains are left out; the others move to the front, in order, to be
        // written with one call.
        uint64_t kept_count = 0;
        for (uint64_t i = 0; i < count; ++i) {
          auto bytes = piece.subspan(i * kGrainBytes, kGrainBytes);
          if (common::IsAllZero(bytes)) continue;
          if (kept_count != i) {
            std::memcpy(piece.data() + kept_count * kGrainBytes, bytes.data(), kGrainBytes);
          }
          kept[kept_count++] = grain + i;
        }
        if (kept_count > 0) {
          const uint64_t slot = next_slot_.fetch_add(kept_count);
          const uint64_t sector = layout_.overhead_sectors + slot * kWriterGrainSectors;
          if (sector + kept_count * kWriterGrainSectors > kMaxFileSectors) {
            return Error(EFBIG,
                         "{}: the disk's data does not fit a monolithicSparse file (its grain "
                         "pointers reach only the first 2 TiB of the file)",
                         out_.path());
          }
          BOOST_OUTCOME_TRYV(
              out_.WriteAt(sector * kSectorBytes, piece.first(kept_count * kGrainBytes)));
          writeback_->Add(sector * kSectorBytes, kept_count * kGrainBytes);
          for (uint64_t k = 0; k < kept_count; ++k) {
            table[kept[k] % kWriterGtesPerGt] =
                static_cast<uint32_t>(sector + k * kWriterGrainSectors);
          }
          table_used = true;
          grains_written_ += kept_count;
        }
        done_bytes_ += end - reported;
        reported = end;
        grain += count;
      }
    }
    done_bytes_ += unit_end - reported;
    if (!table_used) return Status::Ok();  // its reserved place stays a hole of zeros

    // The table is written after the grains it points at, though nothing depends on
    // that order: the file only becomes visible, renamed, after it is all synced.
    std::array<little_uint32_buf_t, kWriterGtesPerGt> encoded;
    for (size_t i = 0; i < table.size(); ++i) encoded[i] = table[i];
    static_assert(sizeof(encoded) == kTableBytes);
    // Only the sectors holding an entry are written (one sector maps 8 MiB): the others
    // stay holes of zeros, so a table straddling two host pages does not take both when
    // the data lies under one.
    constexpr uint64_t kEntriesPerSector = kSectorBytes / sizeof(uint32_t);
    const auto bytes = std::as_bytes(std::span(encoded));
    for (uint64_t sector = 0; sector < kTableSectors;) {
      auto used = [&](uint64_t s) {
        return std::any_of(table.begin() + s * kEntriesPerSector,
                           table.begin() + (s + 1) * kEntriesPerSector,
                           [](uint32_t e) { return e != 0; });
      };
      if (!used(sector)) {
        ++sector;
        continue;
      }
      uint64_t end = sector + 1;
      while (end < kTableSectors && used(end)) ++end;
      const auto part = bytes.subspan(sector * kSectorBytes, (end - sector) * kSectorBytes);
      for (uint64_t first : {layout_.gt_sector, layout_.rgt_sector}) {
        BOOST_OUTCOME_TRYV(
            out_.WriteAt((first + unit.table * kTableSectors + sector) * kSectorBytes, part));
      }
      sector = end;
    }
    return Status::Ok();
  }

  const DiskSource& source_;
  common::File& out_;
  const Layout layout_;
  const SparseWriteOptions& options_;
  const uint64_t piece_grains_;

  WritebackThread* writeback_ = nullptr;  // set while Run runs
  std::atomic<uint64_t> next_slot_{0};    // grains given file space so far
  std::atomic<uint64_t> grains_written_{0};
  std::atomic<uint64_t> done_bytes_{0};
  std::atomic<bool> stopped_{false};

  std::mutex mutex_;
  Status first_error_;                                   // guarded by mutex_
  uint64_t scan_pos_ = 0;                                // guarded by mutex_
  std::optional<std::pair<uint64_t, uint64_t>> extent_;  // guarded by mutex_: [data, hole)
  uint64_t claimed_until_ = 0;                           // guarded by mutex_
};

// The grain directory or its redundant copy: every table's place, in order.
Status WriteDirectory(common::File& out, uint64_t directory_sector, uint64_t first_table_sector,
                      uint64_t tables) {
  std::vector<little_uint32_buf_t> entries(tables);
  for (uint64_t i = 0; i < tables; ++i) {
    entries[i] = static_cast<uint32_t>(first_table_sector + i * kTableSectors);
  }
  return out.WriteAt(directory_sector * kSectorBytes, std::as_bytes(std::span(entries)));
}

// Everything but the grain data: directories, descriptor, header; then the file's size.
Status WriteMetadata(common::File& out, const Layout& layout, const std::string& descriptor,
                     uint64_t grains) {
  BOOST_OUTCOME_TRYV(WriteDirectory(out, layout.rgd_sector, layout.rgt_sector, layout.tables));
  BOOST_OUTCOME_TRYV(WriteDirectory(out, layout.gd_sector, layout.gt_sector, layout.tables));
  BOOST_OUTCOME_TRYV(out.WriteAt(kDescriptorOffsetSectors * kSectorBytes,
                                 std::as_bytes(std::span(descriptor.data(), descriptor.size()))));
  SparseHeader header;
  header.version = 1;
  header.flags = kFlagValidNewlineDetection | kFlagRedundantGrainTable;
  header.capacity_sectors = layout.capacity_bytes / kSectorBytes;
  header.grain_sectors = kWriterGrainSectors;
  header.descriptor_offset_sectors = kDescriptorOffsetSectors;
  header.descriptor_size_sectors = kWriterDescriptorSectors;
  header.num_gtes_per_gt = kWriterGtesPerGt;
  header.rgd_offset_sectors = layout.rgd_sector;
  header.gd_offset_sectors = layout.gd_sector;
  header.overhead_sectors = layout.overhead_sectors;
  header.unclean_shutdown = false;
  header.compress_algorithm = kCompressionNone;
  BOOST_OUTCOME_TRYV(out.WriteAt(0, EncodeSparseHeader(header)));
  // Grains are written whole, so the file already ends at the last one; with none, the
  // tables' reserved places must still lie inside the file.
  return out.Truncate((layout.overhead_sectors + grains * kWriterGrainSectors) * kSectorBytes);
}

std::string TempPathFor(const std::filesystem::path& out_path) {
  return (out_path.parent_path() /
          fmt::format(".{}.part-{}", out_path.filename().string(), ::getpid()))
      .string();
}

}  // namespace

std::string MakeSparseDescriptor(const std::string& extent_file_name, uint64_t capacity_sectors,
                                 const DiskDdb& ddb, uint32_t cid) {
  Descriptor d = Descriptor::CreateEmpty();
  d.Set("CID", fmt::format("{:08x}", cid));
  d.Set("parentCID", "ffffffff");
  d.Set("createType", "monolithicSparse");
  d.SetExtents({ExtentLine{ExtentAccess::kReadWrite,
                           capacity_sectors,
                           ExtentType::kSparse,
                           extent_file_name,
                           std::nullopt,
                           {}}});
  SetDdb(d, ddb, cid);
  return d.ToString();
}

Result<SparseWriteStats> WriteMonolithicSparse(const DiskSource& source, common::Storage& storage,
                                               const std::string& out_path,
                                               const SparseWriteOptions& options) {
  const uint64_t capacity = source.capacity_bytes();
  if (capacity == 0 || capacity % kSectorBytes != 0 ||
      capacity / kSectorBytes > kMaxCapacitySectors) {
    return Error(EINVAL,
                 "{}: cannot write a disk of {} bytes (a VMDK holds a positive whole number of "
                 "512-byte sectors, at most {} TiB)",
                 out_path, capacity, kMaxCapacitySectors * kSectorBytes >> 40);
  }
  if (storage.Stat(out_path))
    return Error(EEXIST, "{}: already exists (not overwritten)", out_path);

  const std::filesystem::path path(out_path);
  const std::string extent_name =
      options.extent_file_name.empty() ? path.filename().string() : options.extent_file_name;
  SparseWriteStats stats;
  stats.capacity_bytes = capacity;
  stats.cid = NewCid();
  const std::string descriptor =
      MakeSparseDescriptor(extent_name, capacity / kSectorBytes, options.ddb, stats.cid);
  if (descriptor.size() > kWriterDescriptorSectors * kSectorBytes) {
    return Error(EINVAL, "{}: the descriptor ({} bytes) does not fit its {} reserved bytes",
                 out_path, descriptor.size(), kWriterDescriptorSectors * kSectorBytes);
  }
  const Layout layout = PlanLayout(capacity);

  const std::string temp_path = TempPathFor(path);
  BOOST_OUTCOME_TRY(out, storage.CreateExclusive(temp_path));
  // Everything below either renames the finished file into place or removes it.
  auto fail = [&](Status status) -> Result<SparseWriteStats> {
    out.reset();
    (void)storage.Remove(temp_path);
    return status;
  };
  Copier copier(source, *out, layout, options);
  if (Status s = copier.Run(); !s.ok()) return fail(s);
  stats.grains_written = copier.grains_written();
  if (Status s = WriteMetadata(*out, layout, descriptor, stats.grains_written); !s.ok()) {
    return fail(s);
  }
  stats.file_bytes =
      (layout.overhead_sectors + stats.grains_written * kWriterGrainSectors) * kSectorBytes;
  // Durable before it becomes visible under its real name.
  if (Status s = out->Sync(); !s.ok()) return fail(s);
  out.reset();
  if (Status s = storage.Rename(temp_path, out_path, /*no_replace=*/true); !s.ok()) {
    (void)storage.Remove(temp_path);
    return s.code() == EEXIST ? Error(EEXIST, "{}: already exists (not overwritten)", out_path) : s;
  }
  const std::string dir = path.parent_path().empty() ? "." : path.parent_path().string();
  if (Status s = storage.SyncDirectory(dir); !s.ok()) {
    (void)storage.Remove(out_path);
    return s;
  }
  return stats;
}

}  // namespace vmdk
