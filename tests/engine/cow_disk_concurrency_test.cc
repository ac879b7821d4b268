// SPDX-License-Identifier: Apache-2.0
// CowDisk under concurrent writers and readers: copy-on-write of a block nobody owns yet
// must lose no write, and a read must see each block's old or new contents, nothing else.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/memory_storage.h"
#include "fs/engine/cow_disk.h"
#include "tests/engine/cow_disk_fixture.h"

namespace engine {
namespace {

using fakes::Filled;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kSector = 512;

// Collects failures from worker threads; the test reports them after joining.
class Failures {
 public:
  void Add(const std::string& what) {
    std::lock_guard lock(mutex_);
    if (count_++ < 5) first_ += what + "\n";
  }
  int count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  std::string Summary() const {
    std::lock_guard lock(mutex_);
    return std::to_string(count_) + " failures, first:\n" + first_;
  }

 private:
  mutable std::mutex mutex_;
  int count_ = 0;       // guarded by mutex_
  std::string first_;  // guarded by mutex_
};

class CowDiskConcurrencyTest : public ::testing::Test {
 protected:
  void Build(uint64_t blocks) {
    auto made = fakes::MakeTestDisk(storage_, {"/c/D.delta", "/c/D.map"}, blocks * kBlock);
    disk_ = std::move(made.disk);
    lower_ = made.lower;
    ASSERT_TRUE(disk_);
  }
  std::vector<std::byte> ReadBlock(uint64_t block) {
    std::vector<std::byte> out(kBlock);
    EXPECT_TRUE(disk_->Read(block * kBlock, out).ok());
    return out;
  }
  // Whether bytes [at, at + n) of `got` equal `want`.
  static bool Holds(const std::vector<std::byte>& got, uint64_t at, std::span<const std::byte> want) {
    return std::memcmp(got.data() + at, want.data(), want.size()) == 0;
  }

  common::MemoryStorage storage_;
  std::unique_ptr<CowDisk> disk_;
  fakes::FakeLowerLayers* lower_ = nullptr;
  Failures failures_;
};

// Busy-waits a pseudo-random number of spins below `range` (up to a few microseconds),
// so that threads released together reach the engine's steps in every relative order over
// many rounds.
void Jitter(std::minstd_rand& random, uint32_t range = 4096) {
  volatile uint32_t spins = 0;
  const uint32_t n = random() % range;
  while (spins < n) spins = spins + 1;
}

// Spins until value >= at_least, yielding after `spins_before_yield`. Waits for a signal
// to race with spin long, so that on a busy machine the waiting thread is still on a CPU
// when the signal comes.
void WaitFor(const std::atomic<uint64_t>& value, uint64_t at_least,
             int spins_before_yield = 100000) {
  for (int spins = 0; value.load() < at_least; ++spins) {
    if (spins > spins_before_yield) std::this_thread::yield();
  }
}

std::vector<std::byte> SectorData(uint64_t block, uint64_t sector) {
  return Filled(block * 8 + sector + 1, kSector);
}

// The two-writers-on-one-unallocated-block requirement: 8 threads each write their own
// sector of the same block nobody owns yet, block after block, starting together every
// few blocks (a barrier per block is slow when the machine is busy).
TEST_F(CowDiskConcurrencyTest, EightWritersToSectorsOfOneNewBlockAllKeepTheirBytes) {
  constexpr uint64_t kBlocks = 2000;
  constexpr uint64_t kBlocksPerStart = 4;
  constexpr int kThreads = 8;
  Build(kBlocks);
  // In every fourth block one writer sits out, so that block keeps a sector from below.
  auto sits_out = [](uint64_t block, int t) { return block % 4 == 0 && t == int(block / 4 % 8); };
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::minstd_rand random(t + 1);
      for (uint64_t b = 0; b < kBlocks; ++b) {
        auto data = SectorData(b, t);
        if (b % kBlocksPerStart == 0) start.arrive_and_wait();
        if (sits_out(b, t)) continue;
        if (b % 2) Jitter(random);
        common::Status s = disk_->Write(b * kBlock + t * kSector, data);
        if (!s.ok()) failures_.Add(s.message());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures_.count(), 0) << failures_.Summary();

  for (uint64_t b = 0; b < kBlocks; ++b) {
    auto got = ReadBlock(b);
    for (int t = 0; t < kThreads; ++t) {
      auto lower = lower_->bytes(b * kBlock + t * kSector, kSector);
      auto want = sits_out(b, t) ? std::vector(lower.begin(), lower.end()) : SectorData(b, t);
      if (!Holds(got, t * kSector, want)) {
        failures_.Add("block " + std::to_string(b) + " sector " + std::to_string(t) +
                      (sits_out(b, t) ? " lost the lower data" : " lost its writer's data"));
      }
    }
  }
  EXPECT_EQ(failures_.count(), 0) << failures_.Summary();
  EXPECT_EQ(disk_->delta().RunLength(0, kBlocks), kBlocks);
  EXPECT_EQ(lower_->read_calls(), kBlocks) << "each block is copied up from below once";
}

// One thread writes two whole blocks at a time while two others each write a sector of
// one of those blocks, all starting together. Every sector ends up holding the whole
// write or a later sector write; nothing from below may survive (the whole write covers it).
TEST_F(CowDiskConcurrencyTest, WholeBlockWritesRacingPartialWritesLoseNothing) {
  constexpr uint64_t kPairs = 2000;
  Build(2 * kPairs);
  struct Partial {
    uint64_t block_in_pair;
    uint64_t sector;
  };
  const std::vector<Partial> partials = {{0, 1}, {1, 3}};
  auto whole_data = [](uint64_t pair) { return Filled(1'000'000 + pair, 2 * kBlock); };
  std::barrier start(1 + static_cast<std::ptrdiff_t>(partials.size()));
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    std::minstd_rand random(1);
    for (uint64_t p = 0; p < kPairs; ++p) {
      auto data = whole_data(p);
      start.arrive_and_wait();
      Jitter(random);
      common::Status s = disk_->Write(2 * p * kBlock, data);
      if (!s.ok()) failures_.Add(s.message());
    }
  });
  for (const Partial& partial : partials) {
    threads.emplace_back([&, partial] {
      std::minstd_rand random(partial.sector + 2);
      for (uint64_t p = 0; p < kPairs; ++p) {
        uint64_t block = 2 * p + partial.block_in_pair;
        auto data = SectorData(block, partial.sector);
        start.arrive_and_wait();
        Jitter(random);
        common::Status s = disk_->Write(block * kBlock + partial.sector * kSector, data);
        if (!s.ok()) failures_.Add(s.message());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures_.count(), 0) << failures_.Summary();

  for (uint64_t p = 0; p < kPairs; ++p) {
    auto whole = whole_data(p);
    for (uint64_t i = 0; i < 2; ++i) {
      uint64_t block = 2 * p + i;
      auto got = ReadBlock(block);
      for (uint64_t s = 0; s < kBlock / kSector; ++s) {
        auto from_whole = std::span<const std::byte>(whole).subspan(i * kBlock + s * kSector,
                                                                   kSector);
        bool ok = Holds(got, s * kSector, from_whole);
        for (const Partial& partial : partials) {
          if (partial.block_in_pair == i && partial.sector == s) {
            ok = ok || Holds(got, s * kSector, SectorData(block, s));
          }
        }
        if (!ok) {
          bool lower = Holds(got, s * kSector, lower_->bytes(block * kBlock + s * kSector, kSector));
          failures_.Add("block " + std::to_string(block) + " sector " + std::to_string(s) +
                        (lower ? " reads the lower data: the whole-block write was lost"
                               : " holds bytes nobody wrote"));
        }
      }
    }
  }
  EXPECT_EQ(failures_.count(), 0) << failures_.Summary();
}

// The same race, aimed. The partial writer copies up the first block of a pair; the
// storage fault hook tells the whole writer when that copy-up is about to write (shortly
// before it marks the block owned), and the whole writer then starts its two-block write
// after a short random delay, so over many pairs the mark lands at every point of the
// whole write's ownership check. The second block (which only the whole write touches)
// must end up holding the whole write.
TEST_F(CowDiskConcurrencyTest, WholeWriteOfTwoNewBlocksSurvivesAPartialWriteTakingTheFirst) {
  constexpr uint64_t kPairs = 3000;
  Build(2 * kPairs);
  auto whole_data = [](uint64_t pair) { return Filled(2'000'000 + pair, 2 * kBlock); };
  static thread_local bool is_partial_writer = false;
  std::atomic<uint64_t> round{0};         // pairs [0, round) may start
  std::atomic<uint64_t> copying_up{0};    // the partial writer is writing pair copying_up - 1
  std::atomic<uint64_t> partial_done{0};  // the partial writer is done with [0, partial_done)
  storage_.SetFaultHook([&](common::MemoryStorage::Op op, const std::string&) {
    if (is_partial_writer && op == common::MemoryStorage::Op::kWrite) {
      copying_up.store(round.load());
    }
    return common::Status::Ok();
  });
  std::thread partial([&] {
    is_partial_writer = true;
    for (uint64_t p = 0; p < kPairs; ++p) {
      WaitFor(round, p + 1);
      common::Status s = disk_->Write(2 * p * kBlock + kSector, SectorData(2 * p, 1));
      if (!s.ok()) failures_.Add(s.message());
      partial_done.store(p + 1);
    }
  });
  std::thread whole([&] {
    std::minstd_rand random(3);
    for (uint64_t p = 0; p < kPairs; ++p) {
      auto data = whole_data(p);
      round.store(p + 1);
      WaitFor(copying_up, p + 1);
      Jitter(random, 1024);
      common::Status s = disk_->Write(2 * p * kBlock, data);
      if (!s.ok()) failures_.Add(s.message());
      WaitFor(partial_done, p + 1, 100);
    }
  });
  whole.join();
  partial.join();
  storage_.SetFaultHook(nullptr);
  ASSERT_EQ(failures_.count(), 0) << failures_.Summary();
  for (uint64_t p = 0; p < kPairs; ++p) {
    auto whole = whole_data(p);
    auto first = ReadBlock(2 * p);
    auto second = ReadBlock(2 * p + 1);
    auto with_partial = std::vector(whole.begin(), whole.begin() + kBlock);
    auto sector = SectorData(2 * p, 1);
    std::memcpy(with_partial.data() + kSector, sector.data(), kSector);
    if (!std::equal(second.begin(), second.end(), whole.begin() + kBlock)) {
      failures_.Add("block " + std::to_string(2 * p + 1) + " lost the whole-block write" +
                    (disk_->delta().IsOwned(2 * p + 1) ? "" : " (the delta does not own it)"));
    }
    if (!std::equal(first.begin(), first.end(), whole.begin()) && first != with_partial) {
      failures_.Add("block " + std::to_string(2 * p) + " holds neither write order's bytes");
    }
  }
  EXPECT_EQ(failures_.count(), 0) << failures_.Summary();
}

// A writer takes blocks over one at a time, whole-block and partial writes alternating.
// Three readers read about four blocks from the block being taken over, from the block
// before it, and from its second sector: once when the storage fault hook shows that the
// block's data is being written (shortly before the block is marked owned), after a short
// random delay, and once after the write. Every byte read must be its block's old or new
// contents, never old again after new, and no read may fail.
TEST_F(CowDiskConcurrencyTest, ReadsRacingWritesSeeOnlyOldOrNewBlockContents) {
  constexpr uint64_t kBlocks = 3000;
  constexpr uint64_t kReadBlocks = 4;
  struct Reader {
    uint64_t blocks_before;  // reads start this many blocks before the one being written
    uint64_t skip_bytes;     // ... and this many bytes into their first block
  };
  const std::vector<Reader> kReaders = {{0, 0}, {1, 0}, {0, kSector}};
  Build(kBlocks);
  std::vector<std::vector<std::byte>> new_contents(kBlocks);
  for (uint64_t b = 0; b < kBlocks; ++b) {
    auto old = lower_->bytes(b * kBlock, kBlock);
    new_contents[b].assign(old.begin(), old.end());
    if (b % 2 == 0) {
      new_contents[b] = Filled(b + 7, kBlock);
    } else {
      auto sector = SectorData(b, b % 8);
      std::memcpy(new_contents[b].data() + b % 8 * kSector, sector.data(), kSector);
    }
  }
  static thread_local bool is_writer = false;
  std::atomic<uint64_t> writing{0};       // the writer is writing block writing - 1
  std::atomic<uint64_t> copying_up{0};    // ... and has reached its storage write
  std::atomic<uint64_t> written{0};       // blocks [0, written) are written
  std::atomic<uint64_t> reader_rounds{0};  // rounds the readers have finished, summed
  storage_.SetFaultHook([&](common::MemoryStorage::Op op, const std::string&) {
    if (is_writer && op == common::MemoryStorage::Op::kWrite) copying_up.store(writing.load());
    return common::Status::Ok();
  });
  std::thread writer([&] {
    is_writer = true;
    for (uint64_t b = 0; b < kBlocks; ++b) {
      WaitFor(reader_rounds, kReaders.size() * b, 100);
      writing.store(b + 1);
      common::Status s = b % 2 == 0
                             ? disk_->Write(b * kBlock, new_contents[b])
                             : disk_->Write(b * kBlock + b % 8 * kSector, SectorData(b, b % 8));
      if (!s.ok()) failures_.Add(s.message());
      written.store(b + 1);
    }
  });
  std::vector<std::thread> readers;
  for (size_t r = 0; r < kReaders.size(); ++r) {
    readers.emplace_back([&, r] {
      const Reader reader = kReaders[r];
      std::minstd_rand random(r + 5);
      std::vector<bool> seen_new(kBlocks, false);
      std::vector<std::byte> buffer(kReadBlocks * kBlock - reader.skip_bytes);
      auto read_and_check = [&](uint64_t first, uint64_t during) {
        const uint64_t written_before = written.load();  // these must read new
        const uint64_t offset = first * kBlock + reader.skip_bytes;
        if (common::Status s = disk_->Read(offset, buffer); !s.ok()) {
          failures_.Add("read at byte " + std::to_string(offset) + " while block " +
                        std::to_string(during) + " was written failed: " + s.message());
          return;
        }
        for (uint64_t i = 0; i < kReadBlocks; ++i) {
          const uint64_t block = first + i;
          const uint64_t skip = i == 0 ? reader.skip_bytes : 0;  // bytes of it not read
          auto got = std::span<const std::byte>(buffer).subspan(
              i * kBlock - (i == 0 ? 0 : reader.skip_bytes), kBlock - skip);
          auto old = lower_->bytes(block * kBlock + skip, kBlock - skip);
          if (std::ranges::equal(got, std::span(new_contents[block]).subspan(skip))) {
            seen_new[block] = true;
          } else if (!std::ranges::equal(got, old)) {
            bool zeros = std::ranges::all_of(got, [](std::byte x) { return x == std::byte{0}; });
            failures_.Add("read at byte " + std::to_string(offset) + " while block " +
                          std::to_string(during) + " was written: block " +
                          std::to_string(block) +
                          (zeros ? " reads zeros" : " holds neither its old nor its new bytes"));
          } else if (seen_new[block] || block < written_before) {
            failures_.Add("block " + std::to_string(block) + " read old after new");
          }
        }
      };
      for (uint64_t b = 0; b < kBlocks; ++b) {
        const uint64_t first = std::min(b - std::min(b, reader.blocks_before),
                                        kBlocks - kReadBlocks);
        WaitFor(copying_up, b + 1);
        Jitter(random, 1024);
        read_and_check(first, b);
        WaitFor(written, b + 1, 100);
        read_and_check(first, b);
        reader_rounds.fetch_add(1);
      }
    });
  }
  writer.join();
  for (auto& reader : readers) reader.join();
  storage_.SetFaultHook(nullptr);
  EXPECT_EQ(failures_.count(), 0) << failures_.Summary();
  for (uint64_t b = 0; b < kBlocks; ++b) {
    ASSERT_EQ(ReadBlock(b), new_contents[b]) << "block " << b;
  }
}

}  // namespace
}  // namespace engine
