// SPDX-License-Identifier: Apache-2.0
// Ten linked clones of one parent mounted at once, each written by its own qemu-io at
// the same time as the others: each reads back its own data and the parent's, never a
// sibling's, and all of them unmount cleanly.
#include <functional>

#include "tests/mount/host_mounts.h"

namespace mount_test {
namespace {

constexpr int kClones = 10;

// Runs body(i) for i in [0, count) on one thread each and waits for all of them.
std::vector<::testing::AssertionResult> InParallel(
    int count, const std::function<::testing::AssertionResult(int)>& body) {
  std::vector<::testing::AssertionResult> results(count, ::testing::AssertionSuccess());
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&results, &body, i] { results[i] = body(i); });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

// "c0".."c9" (built with append: GCC 12's -Wrestrict misfires on "c" + std::to_string).
std::string CloneName(int i) { return std::string("c").append(std::to_string(i)); }

// A qemu-io command: "write -P 0x21 0 4194304" and the like.
std::string PatternCommand(const char* op, int pattern, uint64_t offset_bytes,
                           uint64_t length_bytes) {
  char text[96];
  std::snprintf(text, sizeof text, "%s -P 0x%02x %llu %llu", op, pattern,
                static_cast<unsigned long long>(offset_bytes),
                static_cast<unsigned long long>(length_bytes));
  return text;
}

using ManyClonesTest = MountTest;

TEST_F(ManyClonesTest, TenClonesWrittenConcurrentlyEachKeepOnlyTheirOwnData) {
  const std::string parent =
      MakeParent("base.vmdk", "32M", {"write -P 0x11 0 8M", "write -P 0x12 24M 8M"});
  const std::string parent_sha = testing_support::Sha256OfFile(parent);
  std::vector<std::unique_ptr<MountedClone>> mounts;
  for (int i = 0; i < kClones; ++i) {
    mounts.push_back(
        std::make_unique<MountedClone>(Clone(parent, CloneName(i)), Path("m-" + CloneName(i))));
    ASSERT_MOUNTED(*mounts.back());
  }
  // Clone i writes pattern 0x20+i over 4 MiB of the parent's data (whole blocks), 0x40+i
  // at an offset of its own that is not block-aligned (copy-on-write of the parent's
  // bytes around it) and 0x60+i over a hole of the parent, then flushes.
  constexpr uint64_t kMiB = 1 << 20;
  auto own_offset = [](int i) -> uint64_t { return 6 * kMiB + 1000 * i + 7; };
  constexpr uint64_t kOwnLength = 70000;
  auto writes = InParallel(kClones, [&](int i) {
    return QemuIo(*mounts[i] / "base.vmdk",
                  {PatternCommand("write", 0x20 + i, 0, 4 * kMiB),
                   PatternCommand("write", 0x40 + i, own_offset(i), kOwnLength),
                   PatternCommand("write", 0x60 + i, 12 * kMiB, kMiB), "flush"});
  });
  for (int i = 0; i < kClones; ++i) EXPECT_TRUE(writes[i]) << "clone " << i;

  auto reads = InParallel(kClones, [&](int i) {
    const uint64_t own_end = own_offset(i) + kOwnLength;
    return QemuIo(*mounts[i] / "base.vmdk",
                  {PatternCommand("read", 0x20 + i, 0, 4 * kMiB),
                   PatternCommand("read", 0x11, 4 * kMiB, own_offset(i) - 4 * kMiB),
                   PatternCommand("read", 0x40 + i, own_offset(i), kOwnLength),
                   PatternCommand("read", 0x11, own_end, 8 * kMiB - own_end),
                   PatternCommand("read", 0, 8 * kMiB, 4 * kMiB),
                   PatternCommand("read", 0x60 + i, 12 * kMiB, kMiB),
                   PatternCommand("read", 0, 13 * kMiB, 11 * kMiB),
                   PatternCommand("read", 0x12, 24 * kMiB, 8 * kMiB)});
  });
  for (int i = 0; i < kClones; ++i) EXPECT_TRUE(reads[i]) << "clone " << i;

  auto unmounted = InParallel(kClones, [&](int i) {
    return mounts[i]->Unmount() ? ::testing::AssertionSuccess()
                                : ::testing::AssertionFailure() << "unmount failed";
  });
  for (int i = 0; i < kClones; ++i) {
    EXPECT_TRUE(unmounted[i]) << "clone " << i;
    EXPECT_FALSE(IsMountpoint(Path("m-" + CloneName(i))));
    EXPECT_FALSE(ProcessAlive(mounts[i]->pid()));
    EXPECT_NE(ReadText(Path(CloneName(i)) + "/.clonefs/daemon.log").find("every write flushed"),
              std::string::npos)
        << "clone " << i;
  }
  EXPECT_EQ(testing_support::Sha256OfFile(parent), parent_sha);
}

}  // namespace
}  // namespace mount_test
