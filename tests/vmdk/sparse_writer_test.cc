// SPDX-License-Identifier: Apache-2.0
// The monolithicSparse writer: what it writes must read back, through this project's
// reader, as exactly the source; holes and all-zero grains stay out of the file; the
// layout is QEMU's and VMware's; and a failed or cancelled write leaves no file.

#include "vmdk/sparse_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "common/memory_storage.h"
#include "tests/vmdk/disk_test_util.h"
#include "vmdk/descriptor.h"
#include "vmdk/sparse_header.h"

namespace vmdk_test {
namespace {

using common::Result;
using common::Status;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr uint64_t kGrain = 64 * kKiB;
constexpr uint64_t kTableSpan = 512 * kGrain;  // 32 MiB

uint32_t Le32(const Bytes& bytes, uint64_t offset) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[offset + i]);
  return v;
}

// A sparse in-memory disk: byte runs that hold data, plus runs that are reported as data
// but read as zeros (as a flat extent or a guest that wrote zeros would).
class FakeSource final : public vmdk::DiskSource {
 public:
  explicit FakeSource(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  FakeSource& Put(uint64_t offset, Bytes bytes) {
    ReportData(offset, bytes.size());
    contents_[offset] = std::move(bytes);
    return *this;
  }
  FakeSource& ReportData(uint64_t offset, uint64_t length) {
    uint64_t start = offset, end = offset + length;
    // Merge with every reported run it touches.
    auto it = runs_.upper_bound(start);
    if (it != runs_.begin() && std::prev(it)->second >= start) --it;
    while (it != runs_.end() && it->first <= end) {
      start = std::min(start, it->first);
      end = std::max(end, it->second);
      it = runs_.erase(it);
    }
    runs_[start] = end;
    return *this;
  }
  FakeSource& FailReadsAt(uint64_t offset) {
    fail_at_ = offset;
    return *this;
  }

  // What the disk reads as, for small disks.
  Bytes Expected() const {
    Bytes all(capacity_);
    for (const auto& [offset, bytes] : contents_) {
      std::copy(bytes.begin(), bytes.end(), all.begin() + offset);
    }
    return all;
  }
  // Offsets NextData and NextHole were asked about, in order.
  std::vector<uint64_t> queries() const {
    std::lock_guard lock(mutex_);
    return queries_;
  }

  uint64_t capacity_bytes() const override { return capacity_; }
  Status Read(uint64_t offset, std::span<std::byte> dst) const override {
    if (offset + dst.size() > capacity_) return common::Error(EINVAL, "read past the end");
    if (fail_at_ && *fail_at_ >= offset && *fail_at_ < offset + dst.size()) {
      return common::Error(EIO, "fake.vmdk: read at byte {} failed", *fail_at_);
    }
    std::memset(dst.data(), 0, dst.size());
    for (const auto& [at, bytes] : contents_) {
      const uint64_t from = std::max(at, offset);
      const uint64_t to = std::min(at + bytes.size(), offset + dst.size());
      if (from < to)
        std::memcpy(dst.data() + (from - offset), bytes.data() + (from - at), to - from);
    }
    return Status::Ok();
  }
  Result<uint64_t> NextData(uint64_t offset) const override {
    Record(offset);
    for (const auto& [start, end] : runs_) {
      if (end > offset) return std::max(start, offset);
    }
    return capacity_;
  }
  Result<uint64_t> NextHole(uint64_t offset) const override {
    Record(offset);
    for (const auto& [start, end] : runs_) {
      if (start <= offset && offset < end) return std::min(end, capacity_);
    }
    return offset;
  }

 private:
  void Record(uint64_t offset) const {
    std::lock_guard lock(mutex_);
    queries_.push_back(offset);
  }

  uint64_t capacity_;
  std::map<uint64_t, Bytes> contents_;  // disjoint
  std::map<uint64_t, uint64_t> runs_;   // start -> end, reported as data
  std::optional<uint64_t> fail_at_;
  mutable std::mutex mutex_;
  mutable std::vector<uint64_t> queries_;
};

class SparseWriterTest : public ::testing::Test {
 protected:
  SparseWriterTest() { EXPECT_TRUE(storage_.CreateDirectory("/out").ok()); }

  Result<vmdk::SparseWriteStats> Write(const FakeSource& source,
                                       vmdk::SparseWriteOptions options = {}) {
    if (options.ddb.adapter_type.empty()) {
      options.ddb = {"4", "lsilogic", "100", "255", "63"};
    }
    return vmdk::WriteMonolithicSparse(source, storage_, kPath, options);
  }

  Bytes File() const { return storage_.GetFile(kPath).value_or(Bytes{}); }
  std::vector<std::string> OutDir() { return storage_.ListDirectory("/out").value(); }

  static constexpr const char* kPath = "/out/disk.vmdk";
  common::MemoryStorage storage_;
};

TEST_F(SparseWriterTest, ReadsBackAsTheSourceThroughTheReader) {
  const uint64_t capacity = 100 * kMiB + 512;  // the last grain is one sector
  FakeSource source(capacity);
  source
      .Put(0, PatternBytes(kGrain, 1))                         // exactly the first grain
      .Put(kMiB, PatternBytes(4 * kKiB, 2))                    // part of a grain
      .Put(kGrain + 512, PatternBytes(3584, 3))                // sectors inside grain 1
      .Put(2 * kGrain - 512, PatternBytes(1024, 4))            // across a grain boundary
      .Put(200003, PatternBytes(100, 5))                       // not sector-aligned
      .Put(kTableSpan - 6 * kKiB, PatternBytes(12 * kKiB, 6))  // across a grain table
      .Put(capacity - 512, FilledBytes(512, 0xee));            // the last sector
  auto stats = Write(source);
  ASSERT_TRUE(stats) << stats.error().message();

  auto disk = OpenOk(storage_, kPath);
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->capacity_bytes(), capacity);
  EXPECT_TRUE(ReadAll(*disk) == source.Expected());
  EXPECT_EQ(disk->links()[0]->descriptor().create_type(), "monolithicSparse");
  EXPECT_TRUE(disk->links()[0]->warnings().empty());
  // Grains 0, 1, 2, 3, 16, 511, 512 and the last (1600): each written once.
  EXPECT_EQ(stats.value().grains_written, 8u);
  EXPECT_EQ(stats.value().file_bytes, File().size());
  EXPECT_EQ(OutDir(), std::vector<std::string>{"disk.vmdk"});
}

TEST_F(SparseWriterTest, LaysTheFileOutAsQemuAndVmwareDo) {
  FakeSource source(100 * kMiB);
  source.Put(5 * kMiB, PatternBytes(kGrain, 7)).Put(70 * kMiB, PatternBytes(kGrain, 8));
  auto stats = Write(source);
  ASSERT_TRUE(stats) << stats.error().message();
  const Bytes file = File();
  auto header = vmdk::ParseSparseHeader(file);
  ASSERT_TRUE(header) << header.error().message();
  const vmdk::SparseHeader& h = header.value();
  EXPECT_EQ(h.version, 1u);
  EXPECT_EQ(h.flags, vmdk::kFlagValidNewlineDetection | vmdk::kFlagRedundantGrainTable);
  EXPECT_EQ(h.capacity_sectors, 204800u);
  EXPECT_EQ(h.grain_sectors, 128u);
  EXPECT_EQ(h.num_gtes_per_gt, 512u);
  EXPECT_EQ(h.descriptor_offset_sectors, 1u);
  EXPECT_EQ(h.descriptor_size_sectors, 20u);
  // `qemu-img create -f vmdk X 100M` writes the same numbers: 4 tables, 1-sector
  // directories, RGD at 21, GD at 21 + 1 + 4 * 4 = 38, grains from 128.
  EXPECT_EQ(h.rgd_offset_sectors, 21u);
  EXPECT_EQ(h.gd_offset_sectors, 38u);
  EXPECT_EQ(h.overhead_sectors, 128u);
  EXPECT_FALSE(h.unclean_shutdown);
  EXPECT_EQ(file.size(), (128 + 2 * 128) * 512u);

  // The directories point at every table's place; the used tables have equal copies.
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(Le32(file, 21 * 512 + 4 * i), 22 + 4 * i);
    EXPECT_EQ(Le32(file, 38 * 512 + 4 * i), 39 + 4 * i);
    const Bytes rgt(file.begin() + (22 + 4 * i) * 512, file.begin() + (26 + 4 * i) * 512);
    const Bytes gt(file.begin() + (39 + 4 * i) * 512, file.begin() + (43 + 4 * i) * 512);
    EXPECT_EQ(rgt, gt) << "table " << i;
  }
  // Table 0's entry for grain 80 (5 MiB) and table 2's for grain 1120 (70 MiB) point at
  // the two grains; every other entry is 0.
  std::vector<uint32_t> entries;
  for (uint64_t g = 0; g < 4 * 512; ++g) entries.push_back(Le32(file, 39 * 512 + 4 * g));
  EXPECT_EQ(std::count(entries.begin(), entries.end(), 0u), 4 * 512 - 2);
  std::vector<uint32_t> pointers = {entries[80], entries[1120]};
  std::sort(pointers.begin(), pointers.end());
  EXPECT_EQ(pointers, (std::vector<uint32_t>{128, 256}));

  // The embedded descriptor: NUL-padded to its 20 sectors, naming the file itself.
  std::string text(reinterpret_cast<const char*>(file.data()) + 512, 20 * 512);
  text.resize(text.find('\0'));
  auto descriptor = vmdk::Descriptor::Parse(text);
  ASSERT_TRUE(descriptor) << descriptor.error().message();
  EXPECT_EQ(descriptor.value().create_type(), "monolithicSparse");
  EXPECT_EQ(descriptor.value().parent_cid(), vmdk::kNoParentCid);
  EXPECT_EQ(descriptor.value().cid(), stats.value().cid);
  ASSERT_EQ(descriptor.value().extents().size(), 1u);
  EXPECT_EQ(vmdk::FormatExtentLine(descriptor.value().extents()[0]),
            "RW 204800 SPARSE \"disk.vmdk\"");
  EXPECT_EQ(descriptor.value().Get("ddb.adapterType"), "lsilogic");
  EXPECT_EQ(descriptor.value().Get("ddb.geometry.cylinders"), "100");
  // QEMU's format probe needs the first line after the comment to be exactly this.
  EXPECT_EQ(text.substr(0, 32), "# Disk DescriptorFile\nversion=1\n");
}

TEST_F(SparseWriterTest, LeavesHolesAndAllZeroGrainsOut) {
  FakeSource source(64 * kMiB);
  source.Put(0, PatternBytes(kGrain, 1))
      .Put(kGrain, FilledBytes(kGrain, 0))  // data that is all zeros
      .Put(2 * kGrain, PatternBytes(kGrain, 2))
      .ReportData(40 * kMiB, 3 * kMiB);  // reported as data, reads as zeros
  auto stats = Write(source);
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats.value().grains_written, 2u);
  EXPECT_EQ(File().size(), (128 + 2 * 128) * 512u);

  auto disk = OpenOk(storage_, kPath);
  ASSERT_TRUE(disk);
  EXPECT_EQ(MapAll(*disk), (std::vector<MapRun>{{kData, kGrain, 0},
                                                {kUnallocated, kGrain, -1},
                                                {kData, kGrain, 0},
                                                {kUnallocated, 64 * kMiB - 3 * kGrain, -1}}));
  EXPECT_TRUE(ReadAll(*disk) == source.Expected());
  // The second table (32-64 MiB) maps nothing: it is not written, only its place kept.
  const Bytes file = File();
  auto h = vmdk::ParseSparseHeader(file).value();
  const uint64_t table1 = Le32(file, h.gd_offset_sectors * 512 + 4) * 512;
  EXPECT_TRUE(std::all_of(file.begin() + table1, file.begin() + table1 + 2048,
                          [](std::byte b) { return b == std::byte{0}; }));
}

TEST_F(SparseWriterTest, AnEmptyDiskIsJustItsMetadata) {
  FakeSource source(10 * kGiB);
  auto stats = Write(source);
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats.value().grains_written, 0u);
  auto disk = OpenOk(storage_, kPath);
  ASSERT_TRUE(disk);
  EXPECT_EQ(MapAll(*disk), (std::vector<MapRun>{{kUnallocated, 10 * kGiB, -1}}));
  // 320 tables: directories of 3 sectors, tables of 4: 21 + 3 + 1280 + 3 + 1280 = 2587,
  // rounded up to a grain: 2688 sectors.
  EXPECT_EQ(File().size(), 2688 * 512u);
  EXPECT_EQ(stats.value().file_bytes, 2688 * 512u);
}

TEST_F(SparseWriterTest, WritesATinyDisk) {
  FakeSource source(512);
  source.Put(0, FilledBytes(512, 0x5a));
  auto stats = Write(source);
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats.value().grains_written, 1u);
  auto disk = OpenOk(storage_, kPath);
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->capacity_bytes(), 512u);
  EXPECT_EQ(ReadAll(*disk), FilledBytes(512, 0x5a));
  EXPECT_EQ(File().size(), (128 + 128) * 512u);  // the grain is written whole
}

TEST_F(SparseWriterTest, WritesADiskLargerThan4GiBWithDataPastEveryBoundary) {
  const uint64_t capacity = 5 * kGiB + 512;
  FakeSource source(capacity);
  const std::vector<std::pair<uint64_t, uint64_t>> places = {
      {0, 4 * kKiB},
      {2 * kGiB - 4 * kKiB, 8 * kKiB},  // across 2^31
      {4 * kGiB - 512, 1024},           // across 2^32
      {4 * kGiB + kTableSpan - kKiB, 2 * kKiB},
      {capacity - 512, 512},
  };
  uint32_t seed = 10;
  for (const auto& [offset, length] : places) source.Put(offset, PatternBytes(length, seed++));
  vmdk::SparseWriteOptions options;
  options.threads = 4;
  auto stats = Write(source, options);
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats.value().grains_written, 8u);

  auto disk = OpenOk(storage_, kPath);
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->capacity_bytes(), capacity);
  seed = 10;
  for (const auto& [offset, length] : places) {
    EXPECT_EQ(ReadRange(*disk, offset, length), PatternBytes(length, seed++)) << offset;
  }
  // Around them: zeros, and unallocated beyond the grains holding them.
  EXPECT_EQ(ReadRange(*disk, 3 * kGiB, 4096), FilledBytes(4096, 0));
  auto m = disk->Map(3 * kGiB, kGiB);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.value().state, kUnallocated);
  EXPECT_EQ(m.value().length_bytes, kGiB - kGrain);
}

TEST_F(SparseWriterTest, ManyThreadsAndSmallReadsGiveTheSameDisk) {
  FakeSource source(256 * kMiB);
  for (uint64_t i = 0; i < 60; ++i) {
    const uint64_t offset = (i * 4397 * kKiB + i * 512) % (256 * kMiB - 200 * kKiB);
    source.Put(offset, PatternBytes(130 * kKiB, static_cast<uint32_t>(i)));
  }
  vmdk::SparseWriteOptions options;
  options.threads = 8;
  options.read_bytes = 2 * kGrain;
  std::vector<uint64_t> progress;
  options.progress = [&](uint64_t done) { progress.push_back(done); };
  auto stats = Write(source, options);
  ASSERT_TRUE(stats) << stats.error().message();
  auto disk = OpenOk(storage_, kPath);
  ASSERT_TRUE(disk);
  EXPECT_TRUE(ReadAll(*disk) == source.Expected());
  ASSERT_FALSE(progress.empty());
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_EQ(progress.back(), 256 * kMiB);
}

TEST_F(SparseWriterTest, AsksTheSourceAboutItsAllocationFrontToBack) {
  FakeSource source(512 * kMiB);
  for (uint64_t i = 0; i < 16; ++i) source.Put(i * 31 * kMiB + 7 * kKiB, PatternBytes(kMiB, i));
  source.ReportData(300 * kMiB, 150 * kMiB);  // one run over several tables
  vmdk::SparseWriteOptions options;
  options.threads = 4;
  ASSERT_TRUE(Write(source, options));
  const std::vector<uint64_t> queries = source.queries();
  EXPECT_TRUE(std::is_sorted(queries.begin(), queries.end()));
  // One NextData and one NextHole per run, and a last NextData: no rescanning.
  EXPECT_LE(queries.size(), 2 * 17 + 1);
}

TEST_F(SparseWriterTest, TwoRunsInOneGrainWriteItOnce) {
  FakeSource source(kMiB);
  source.Put(100, FilledBytes(100, 1))
      .Put(1000, FilledBytes(100, 2))
      .Put(kGrain - 10, FilledBytes(20, 3));
  auto stats = Write(source);
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats.value().grains_written, 2u);
  auto disk = OpenOk(storage_, kPath);
  ASSERT_TRUE(disk);
  EXPECT_TRUE(ReadAll(*disk) == source.Expected());
}

TEST_F(SparseWriterTest, AReadFailureLeavesNoFile) {
  FakeSource source(256 * kMiB);
  for (uint64_t i = 0; i < 8; ++i) source.Put(i * 32 * kMiB, PatternBytes(kMiB, i));
  source.FailReadsAt(5 * 32 * kMiB + 4096);
  vmdk::SparseWriteOptions options;
  options.threads = 3;
  auto stats = Write(source, options);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), EIO);
  EXPECT_NE(stats.error().message().find("fake.vmdk: read at byte"), std::string::npos)
      << stats.error().message();
  EXPECT_TRUE(OutDir().empty());
}

TEST_F(SparseWriterTest, AFullDiskLeavesNoFile) {
  FakeSource source(64 * kMiB);
  for (uint64_t i = 0; i < 32; ++i) source.Put(i * kMiB, PatternBytes(kGrain, i));
  int writes = 0;
  storage_.SetFaultHook([&](common::MemoryStorage::Op op, const std::string& path) {
    if (op == common::MemoryStorage::Op::kWrite && ++writes == 10) {
      return Status::FromErrno(ENOSPC, path);
    }
    return Status::Ok();
  });
  auto stats = Write(source);
  storage_.SetFaultHook(nullptr);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), ENOSPC);
  EXPECT_TRUE(OutDir().empty());
}

TEST_F(SparseWriterTest, AFailedSyncLeavesNoFile) {
  FakeSource source(kMiB);
  source.Put(0, PatternBytes(kGrain, 1));
  storage_.SetFaultHook([&](common::MemoryStorage::Op op, const std::string& path) {
    return op == common::MemoryStorage::Op::kSync ? Status::FromErrno(EIO, path) : Status::Ok();
  });
  auto stats = Write(source);
  storage_.SetFaultHook(nullptr);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), EIO);
  EXPECT_TRUE(OutDir().empty());
}

TEST_F(SparseWriterTest, CancellingLeavesNoFile) {
  FakeSource source(256 * kMiB);
  for (uint64_t i = 0; i < 8; ++i) source.Put(i * 32 * kMiB, PatternBytes(kMiB, i));
  std::atomic<bool> cancel{true};
  vmdk::SparseWriteOptions options;
  options.cancel = &cancel;
  auto stats = Write(source, options);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), ECANCELED);
  EXPECT_TRUE(OutDir().empty());
}

TEST_F(SparseWriterTest, RefusesToReplaceAFile) {
  storage_.SetFile(kPath, "precious");
  FakeSource source(kMiB);
  auto stats = Write(source);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), EEXIST);
  EXPECT_EQ(File(), ToBytes("precious"));
  EXPECT_EQ(OutDir(), std::vector<std::string>{"disk.vmdk"});
}

TEST_F(SparseWriterTest, RefusesACapacityThatIsNoWholeNumberOfSectors) {
  for (uint64_t capacity : {uint64_t{0}, uint64_t{1000}}) {
    FakeSource source(capacity);
    auto stats = Write(source);
    ASSERT_FALSE(stats) << capacity;
    EXPECT_EQ(stats.error().code(), EINVAL);
    EXPECT_NE(stats.error().message().find("/out/disk.vmdk"), std::string::npos);
  }
  EXPECT_TRUE(OutDir().empty());
}

}  // namespace
}  // namespace vmdk_test
