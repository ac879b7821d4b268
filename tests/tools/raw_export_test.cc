// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/raw_export.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "common/memory_storage.h"

namespace tools {
namespace {

using common::MemoryStorage;

std::vector<std::byte> Pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte(uint8_t(seed + i * 7 + i / 4096));
  return v;
}

// Passes everything to a MemoryStorage but fails writes once `write_budget` bytes were
// written, as a full disk does.
class FullDiskStorage final : public common::Storage {
 public:
  FullDiskStorage(MemoryStorage& inner, uint64_t write_budget)
      : inner_(inner), budget_(write_budget) {}

  common::Result<std::unique_ptr<common::File>> Open(const std::string& p,
                                                     common::OpenMode m) override {
    return inner_.Open(p, m);
  }
  common::Result<std::unique_ptr<common::File>> CreateExclusive(const std::string& p) override {
    BOOST_OUTCOME_TRY(file, inner_.CreateExclusive(p));
    return std::unique_ptr<common::File>(new LimitedFile(std::move(file), budget_));
  }
  common::Result<common::FileInfo> Stat(const std::string& p) override { return inner_.Stat(p); }
  common::Status Rename(const std::string& f, const std::string& t, bool nr) override {
    return inner_.Rename(f, t, nr);
  }
  common::Status Remove(const std::string& p) override { return inner_.Remove(p); }
  common::Result<std::unique_ptr<common::MappedFile>> MapFile(const std::string& p,
                                                              common::OpenMode mode) override {
    return inner_.MapFile(p, mode);
  }
  common::Status CreateDirectory(const std::string& p) override {
    return inner_.CreateDirectory(p);
  }
  common::Status RemoveDirectory(const std::string& p) override {
    return inner_.RemoveDirectory(p);
  }
  common::Result<std::vector<std::string>> ListDirectory(const std::string& p) override {
    return inner_.ListDirectory(p);
  }
  common::Status SyncDirectory(const std::string& p) override { return inner_.SyncDirectory(p); }
  common::Status SetMode(const std::string& p, uint32_t m) override { return inner_.SetMode(p, m); }

 private:
  class LimitedFile final : public common::File {
   public:
    LimitedFile(std::unique_ptr<common::File> inner, uint64_t& budget)
        : File(inner->path()), inner_(std::move(inner)), budget_(budget) {}
    common::Result<size_t> ReadAt(uint64_t o, std::span<std::byte> d) const override {
      return inner_->ReadAt(o, d);
    }
    common::Status WriteAt(uint64_t o, std::span<const std::byte> s) override {
      std::lock_guard lock(mutex_);
      if (s.size() > budget_) return common::Status::FromErrno(ENOSPC, path());
      budget_ -= s.size();
      return inner_->WriteAt(o, s);
    }
    common::Result<uint64_t> Size() const override { return inner_->Size(); }
    common::Status Truncate(uint64_t n) override { return inner_->Truncate(n); }
    common::Status Sync() override { return inner_->Sync(); }
    common::Status PunchHole(uint64_t o, uint64_t n) override { return inner_->PunchHole(o, n); }

   private:
    std::unique_ptr<common::File> inner_;
    uint64_t& budget_;
    std::mutex mutex_;
  };

  MemoryStorage& inner_;
  uint64_t budget_;
};

class RawExportTest : public ::testing::Test {
 protected:
  // A 3 MiB disk: 1 MiB of data, 1 MiB ZERO extent, 1 MiB flat extent whose file holds
  // zeros except one 4 KiB block.
  void SetUp() override {
    data_ = Pattern(1 << 20, 3);
    tail_.assign(1 << 20, std::byte{0});
    std::memset(tail_.data() + 8192, 0xee, 4096);
    storage_.SetFile("d/a.raw", data_);
    storage_.SetFile("d/b.raw", tail_);
    storage_.SetFile("d/disk.vmdk",
                     "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
                     "createType=\"custom\"\n# Extent description\n"
                     "RW 2048 FLAT \"a.raw\" 0\nRW 2048 ZERO\nRW 2048 FLAT \"b.raw\" 0\n");
    auto disk = vmdk::Disk::Open(storage_, "d/disk.vmdk");
    ASSERT_TRUE(disk) << disk.error().message();
    disk_ = std::move(disk).value();
  }

  std::vector<std::byte> Expected() const {
    std::vector<std::byte> all(data_);
    all.resize(2 << 20, std::byte{0});
    all.insert(all.end(), tail_.begin(), tail_.end());
    return all;
  }

  MemoryStorage storage_;
  std::vector<std::byte> data_, tail_;
  std::unique_ptr<vmdk::Disk> disk_;
};

TEST_F(RawExportTest, WritesWholeDiskAndSkipsHolesAndZeroBlocks) {
  ExportOptions options;
  options.chunk_bytes = 256 << 10;
  options.threads = 3;
  uint64_t last_progress = 0;
  options.progress = [&](uint64_t done) { last_progress = done; };
  auto stats = ExportRaw(*disk_, storage_, "d/out.raw", options);
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(storage_.GetFile("d/out.raw"), Expected());
  EXPECT_EQ(stats.value().capacity_bytes, 3u << 20);
  EXPECT_EQ(stats.value().written_bytes, (1u << 20) + 4096);  // data + the one tail block
  EXPECT_EQ(last_progress, 3u << 20);
}

TEST_F(RawExportTest, RefusesToOverwriteExistingOutput) {
  storage_.SetFile("d/out.raw", "precious");
  auto stats = ExportRaw(*disk_, storage_, "d/out.raw", ExportOptions{});
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), EEXIST);
  EXPECT_NE(stats.error().message().find("d/out.raw"), std::string::npos);
  auto kept = storage_.GetFile("d/out.raw");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->size(), 8u);
}

TEST_F(RawExportTest, FullDiskFailsWithEnospcAndLeavesNothing) {
  FullDiskStorage full(storage_, 300 << 10);
  ExportOptions options;
  options.chunk_bytes = 128 << 10;
  auto stats = ExportRaw(*disk_, full, "d/out.raw", options);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), ENOSPC);
  EXPECT_FALSE(storage_.GetFile("d/out.raw"));
  EXPECT_FALSE(storage_.GetFile("d/.out.raw.part-" + std::to_string(::getpid())));
}

TEST_F(RawExportTest, CancelledExportFailsAndLeavesNothing) {
  std::atomic<bool> cancel{true};
  ExportOptions options;
  options.cancel = &cancel;
  auto stats = ExportRaw(*disk_, storage_, "d/out.raw", options);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), ECANCELED);
  EXPECT_FALSE(storage_.GetFile("d/out.raw"));
  EXPECT_FALSE(storage_.GetFile("d/.out.raw.part-" + std::to_string(::getpid())));
}

TEST_F(RawExportTest, ReadErrorFailsWithTheReadersMessageAndLeavesNothing) {
  // A NOACCESS extent cannot be read: the export must stop with EACCES.
  storage_.SetFile("d/bad.vmdk",
                   "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
                   "createType=\"custom\"\n# Extent description\n"
                   "RW 2048 FLAT \"a.raw\" 0\nNOACCESS 2048 FLAT \"nowhere.raw\" 0\n");
  auto disk = vmdk::Disk::Open(storage_, "d/bad.vmdk");
  ASSERT_TRUE(disk) << disk.error().message();
  auto stats = ExportRaw(*disk.value(), storage_, "d/out.raw", ExportOptions{});
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), EACCES);
  EXPECT_NE(stats.error().message().find("NOACCESS"), std::string::npos);
  EXPECT_FALSE(storage_.GetFile("d/out.raw"));
}

}  // namespace
}  // namespace tools
