// SPDX-License-Identifier: Apache-2.0
// The engine's crash test (STYLE.md section 6: write, crash, reopen, verify). A seeded
// workload of writes, discards, flushes and a final Close runs on a CowDisk over
// MemoryStorage. For every k, the power is cut before the workload's (k+1)-th mutating
// storage operation and the crash image is taken in each crash mode; the layer is then
// reopened and every block must hold exactly what docs/delta-format.md promises: what it
// held at the last completed flush, or (depending on the mode and on how far the cut
// flush got) a state it passed through since. Never another block's, never garbage.

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/memory_storage.h"
#include "fs/engine/cow_disk.h"
#include "fs/engine/delta_layer.h"
#include "tests/engine/crash_model.h"

namespace engine::crash {
namespace {

// Lets `allow` mutating storage operations through; at the next one the power is cut:
// the crash image (what `mode` keeps of every file at that instant) is taken, and that
// operation and all later ones fail with EIO. What the code does after the cut (Create
// removing its files, say) therefore never reaches the image.
class PowerCut {
 public:
  PowerCut(MemoryStorage& storage, uint64_t allow, CrashMode mode, uint32_t seed)
      : storage_(storage), allow_(allow), mode_(mode), seed_(seed) {
    storage_.SetFaultHook([this](MemoryStorage::Op, const std::string& path) {
      if (passed_ < allow_) {
        ++passed_;
        return Status::Ok();
      }
      if (!image_) TakeImage();
      return common::Error(EIO, "{}: power cut", path);
    });
  }
  ~PowerCut() { storage_.SetFaultHook(nullptr); }
  uint64_t passed() const { return passed_; }
  bool fired() const { return image_.has_value(); }
  // Cuts the power now if the run ended first; leaves the crash image in the storage.
  void Finish() {
    storage_.SetFaultHook(nullptr);
    if (!image_) TakeImage();
    for (const auto& [path, contents] : *image_) {
      if (contents) {
        storage_.SetFile(path, *contents);
      } else {
        (void)storage_.Remove(path);
      }
    }
  }

 private:
  void TakeImage() {
    storage_.Crash(mode_, seed_);
    image_.emplace();
    for (const std::string& path : {kPaths.data, kPaths.map})
      (*image_)[path] = storage_.GetFile(path);
  }

  MemoryStorage& storage_;
  uint64_t allow_;
  CrashMode mode_;
  uint32_t seed_;
  uint64_t passed_ = 0;
  std::optional<std::map<std::string, std::optional<Bytes>>> image_;
};

// A new layer over PatternLower; null (and a test failure) on error.
std::unique_ptr<CowDisk> NewDisk(MemoryStorage& storage) {
  auto delta = DeltaLayer::Create(storage, kPaths, DeltaHeader::ForCapacity(kCapacity));
  if (!delta) {
    ADD_FAILURE() << "create: " << delta.error().message();
    return nullptr;
  }
  auto disk = CowDisk::Create(std::make_unique<PatternLower>(), std::move(delta).value());
  return disk ? std::move(disk).value() : nullptr;
}

RunResult RunWorkload(CowDisk& disk, const std::vector<WorkOp>& ops, const PowerCut& cut) {
  RunResult r;
  for (size_t i = 0; i < ops.size(); ++i) {
    const WorkOp& op = ops[i];
    const uint64_t passed_before = cut.passed();
    Status s;
    if (op.kind == WorkOp::kWrite) {
      Bytes data(op.length);
      FillPattern(data, op.offset, i + 1);
      s = disk.Write(op.offset, data);
    } else if (op.kind == WorkOp::kDiscard) {
      s = disk.Discard(op.offset, op.length);
    } else {
      s = op.kind == WorkOp::kFlush ? disk.Flush() : disk.delta().Close();
    }
    if (!s.ok()) {
      EXPECT_TRUE(cut.fired() && s.code() == EIO) << op.Describe(i) << ": " << s.message();
      r.failed = i;
      r.done_in_failed = cut.passed() - passed_before;
      r.before_failed = r.model.current;
      r.model.Apply(op, i + 1);
      return r;
    }
    r.model.Apply(op, i + 1);
    if (op.durability_point()) r.model.Flushed();
  }
  EXPECT_FALSE(cut.fired()) << "a failed storage operation was reported as success";
  return r;
}

void ExpectCrashImage(const CowDisk& disk, const RunResult& r, const std::vector<WorkOp>& ops,
                      CrashMode mode, const std::string& where) {
  Bytes got(kCapacity);
  Status s = disk.Read(0, got);
  ASSERT_TRUE(s.ok()) << where << ": " << s.message();
  for (uint64_t b = 0; b < kBlocks; ++b) {
    const uint64_t at = b * kBlockBytes, len = std::min<uint64_t>(kBlockBytes, kCapacity - at);
    auto allowed = Allowed(r, ops, b, mode);
    if (std::any_of(allowed.begin(), allowed.end(), [&](const Bytes* image) {
          return std::memcmp(got.data() + at, image->data() + at, len) == 0;
        })) {
      continue;
    }
    uint64_t word = at;
    while (word + 8 < at + len &&
           std::memcmp(got.data() + word, (*allowed.begin())->data() + word, 8) == 0) {
      word += 8;
    }
    std::string expected;
    for (const Bytes* image : allowed)
      expected += (expected.empty() ? "" : " or ") + DescribeWord(*image, word);
    ADD_FAILURE() << where << ": block " << b << " byte +" << word - at << " reads "
                  << DescribeWord(got, word) << "; allowed: " << expected;
    return;
  }
}

struct CrashCase {
  CrashMode mode;
  uint32_t seed;
  const char* name;
};
constexpr CrashCase kCrashCases[] = {{CrashMode::kLoseUnsynced, 0, "lose-unsynced"},
                                     {CrashMode::kKeepAll, 0, "keep-all"},
                                     {CrashMode::kTornPages, 1, "torn-pages/1"},
                                     {CrashMode::kTornPages, 2, "torn-pages/2"},
                                     {CrashMode::kTornPages, 3, "torn-pages/3"}};

// Writes, flushes and reads back: the reopened layer takes new writes.
void ExpectAcceptsWrites(CowDisk& disk, const std::string& where) {
  Bytes fresh(kBlockBytes + 300), back(fresh.size());
  const uint64_t at = 7 * kBlockBytes + 500;
  FillPattern(fresh, at, 9999);
  Status s = disk.Write(at, fresh);
  if (s.ok()) s = disk.Flush();
  if (s.ok()) s = disk.Read(at, back);
  ASSERT_TRUE(s.ok()) << where << ": after reopening: " << s.message();
  EXPECT_TRUE(back == fresh) << where << ": after reopening, a new write does not read back";
}

TEST(CrashTest, CutAtEveryStorageOperationKeepsFlushedDataAndNoForeignData) {
  std::set<std::string> cut_in;  // what kinds of operation the cuts hit
  size_t runs = 0;
  for (uint32_t workload_seed : {1u, 2u, 3u}) {
    const std::vector<WorkOp> ops = MakeWorkload(workload_seed, 30);
    uint64_t count = 0;
    {  // Counts the workload's mutating storage operations; checks the model on the way.
      MemoryStorage storage;
      auto disk = NewDisk(storage);
      ASSERT_TRUE(disk);
      PowerCut cut(storage, std::numeric_limits<uint64_t>::max(), CrashMode::kKeepAll, 0);
      RunResult r = RunWorkload(*disk, ops, cut);
      Bytes got(kCapacity);
      ASSERT_TRUE(disk->Read(0, got).ok());
      ASSERT_TRUE(got == r.model.current) << "workload " << workload_seed << ": model differs";
      count = cut.passed();
    }
    for (uint64_t k = 0; k <= count; ++k) {
      for (const CrashCase& c : kCrashCases) {
        ++runs;
        MemoryStorage storage;
        auto disk = NewDisk(storage);
        ASSERT_TRUE(disk);
        PowerCut cut(storage, k, c.mode, c.seed);
        RunResult r = RunWorkload(*disk, ops, cut);
        disk.reset();
        cut.Finish();
        std::string where =
            fmt::format("workload {}, power cut after {} of {} storage operations, {}",
                        workload_seed, k, count, c.name);
        if (r.failed) {
          where += fmt::format(", in {} after {} of its storage operations",
                               ops[*r.failed].Describe(*r.failed), r.done_in_failed);
          const WorkOp& op = ops[*r.failed];
          cut_in.insert(op.durability_point()
                            ? fmt::format("flush/{}", std::min<uint64_t>(r.done_in_failed, 2))
                            : op.name());
        }
        auto delta = DeltaLayer::Open(storage, kPaths, /*writable=*/true);
        ASSERT_TRUE(delta) << where << ": reopen: " << delta.error().message();
        // Unclean unless Close finished. A cut at Close's last storage operation (the
        // msync of the clean flag) may leave the flag in the mapped header for the kernel
        // to write back: only kLoseUnsynced is sure to drop it.
        const bool closed = !r.failed;
        const bool flag_stored =
            r.failed && ops[*r.failed].kind == WorkOp::kClose && k + 1 == count;
        if (!flag_stored || c.mode == CrashMode::kLoseUnsynced) {
          EXPECT_EQ(delta.value()->was_unclean(), !closed) << where;
        }
        auto reopened = CowDisk::Create(std::make_unique<PatternLower>(), std::move(delta).value());
        ASSERT_TRUE(reopened) << where;
        ExpectCrashImage(*reopened.value(), r, ops, c.mode, where);
        ExpectAcceptsWrites(*reopened.value(), where);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  // The cuts reached every kind of operation and every stage of a flush.
  EXPECT_EQ(cut_in, (std::set<std::string>{"write", "discard", "flush/0", "flush/1", "flush/2"}));
  ::testing::Test::RecordProperty("crash_runs", static_cast<int>(runs));
}

TEST(CrashTest, CutDuringCreateLeavesNoLayerOrAnEmptyOne) {
  uint64_t count = 0;
  {
    MemoryStorage storage;
    PowerCut cut(storage, std::numeric_limits<uint64_t>::max(), CrashMode::kKeepAll, 0);
    ASSERT_TRUE(DeltaLayer::Create(storage, kPaths, DeltaHeader::ForCapacity(kCapacity)));
    count = cut.passed();
  }
  ASSERT_GE(count, 4u);  // at least: size and sync each file
  for (uint64_t k = 0; k <= count; ++k) {
    for (const CrashCase& c : kCrashCases) {
      const std::string where = fmt::format(
          "power cut after {} of {} storage operations of Create, {}", k, count, c.name);
      MemoryStorage storage;
      {
        PowerCut cut(storage, k, c.mode, c.seed);
        (void)DeltaLayer::Create(storage, kPaths, DeltaHeader::ForCapacity(kCapacity));
        cut.Finish();
      }
      auto delta = DeltaLayer::Open(storage, kPaths, /*writable=*/true);
      if (!delta) {  // a clear error naming one of the files
        const Status& e = delta.error();
        EXPECT_TRUE(e.code() == ENOENT || e.code() == EINVAL || e.code() == EIO)
            << where << ": " << e.message();
        EXPECT_NE(e.message().find("/clone/.clonefs/D."), std::string::npos)
            << where << ": " << e.message();
        EXPECT_LT(k, count) << where << ": a finished Create does not open: " << e.message();
        continue;
      }
      // An empty layer: nothing owned, every block reads from below.
      EXPECT_TRUE(delta.value()->was_unclean()) << where;
      EXPECT_EQ(delta.value()->block_count(), kBlocks) << where;
      EXPECT_FALSE(delta.value()->IsOwned(0)) << where;
      EXPECT_EQ(delta.value()->RunLength(0, kBlocks), kBlocks) << where << ": owns blocks";
      auto disk = CowDisk::Create(std::make_unique<PatternLower>(), std::move(delta).value());
      ASSERT_TRUE(disk) << where;
      ExpectCrashImage(*disk.value(), RunResult{}, {}, c.mode, where);
      ExpectAcceptsWrites(*disk.value(), where);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(CrashTest, ReopenReportsUncleanAfterCrashAndCleanAfterClose) {
  MemoryStorage storage;
  Bytes data(2 * kBlockBytes);
  FillPattern(data, kBlockBytes, 1);
  {
    auto disk = NewDisk(storage);
    ASSERT_TRUE(disk);
    ASSERT_TRUE(disk->Write(kBlockBytes, data).ok());
    ASSERT_TRUE(disk->Flush().ok());
  }  // no Close: the process died
  storage.Crash(CrashMode::kKeepAll);
  auto delta = DeltaLayer::Open(storage, kPaths, /*writable=*/true);
  ASSERT_TRUE(delta) << delta.error().message();
  EXPECT_TRUE(delta.value()->was_unclean());
  ASSERT_TRUE(delta.value()->Close().ok());
  delta.value().reset();
  storage.Crash(CrashMode::kLoseUnsynced);  // Close made the clean flag durable
  delta = DeltaLayer::Open(storage, kPaths, /*writable=*/true);
  ASSERT_TRUE(delta) << delta.error().message();
  EXPECT_FALSE(delta.value()->was_unclean());
  auto disk = CowDisk::Create(std::make_unique<PatternLower>(), std::move(delta).value());
  ASSERT_TRUE(disk);
  Bytes back(data.size());
  ASSERT_TRUE(disk.value()->Read(kBlockBytes, back).ok());
  EXPECT_TRUE(back == data);
  // Opened for writing again and never closed: unclean once more.
  disk.value().reset();
  storage.Crash(CrashMode::kLoseUnsynced);
  delta = DeltaLayer::Open(storage, kPaths, /*writable=*/false);
  ASSERT_TRUE(delta) << delta.error().message();
  EXPECT_TRUE(delta.value()->was_unclean());
}

}  // namespace
}  // namespace engine::crash