// SPDX-License-Identifier: Apache-2.0
// O_DIRECT reads and writes of a presented flat disk (dd iflag/oflag=direct, qemu-io
// -t none), aligned 4 KiB and 1 MiB, mixed with buffered I/O: the same operations on a
// plain raw copy of the parent must leave the same bytes.
#include "tests/mount/host_mounts.h"

namespace mount_test {
namespace {

using integration::WriteText;

enum class Direct { kNone, kInput, kOutput };

// dd of length_bytes between two files at byte offsets, in block_size requests, with
// O_DIRECT on one side if asked.
::testing::AssertionResult Dd(const std::string& in, const std::string& out,
                              uint64_t in_offset_bytes, uint64_t out_offset_bytes,
                              uint64_t length_bytes, const std::string& block_size,
                              Direct direct = Direct::kNone) {
  return RunsOk(
      {"dd", "if=" + in, "of=" + out, "bs=" + block_size, "skip=" + std::to_string(in_offset_bytes),
       "seek=" + std::to_string(out_offset_bytes), "count=" + std::to_string(length_bytes),
       std::string(direct == Direct::kInput ? "iflag=direct," : "iflag=") +
           "skip_bytes,count_bytes",
       std::string(direct == Direct::kOutput ? "oflag=direct," : "oflag=") + "seek_bytes",
       "conv=notrunc", "status=none"});
}

using DirectIoTest = MountTest;

TEST_F(DirectIoTest, AlignedDirectReadsAndWritesMatchAPlainRawCopy) {
  const std::string parent =
      MakeParent("base.vmdk", "64M", {"write -P 0x11 0 4M", "write -P 0x22 30M 1M"});
  const std::string reference = Path("reference.raw");
  ASSERT_TRUE(RunsOk({"qemu-img", "convert", "-f", "vmdk", "-O", "raw", parent, reference}));
  const std::string clone = Clone(parent, "c1");
  const std::string small = Path("4k.bin"), large = Path("1m.bin"), other = Path("1m-b.bin");
  WriteText(small, PatternBytes(4096, 20));
  WriteText(large, PatternBytes(1 << 20, 21));
  WriteText(other, PatternBytes(1 << 20, 22));
  constexpr uint64_t kMiB = 1 << 20;
  {
    MountedClone m(clone, Path("m1"));
    ASSERT_MOUNTED(m);
    const std::string flat = m / "base-flat.vmdk";
    for (const std::string& target : {flat, reference}) {
      SCOPED_TRACE(target);
      // Direct writes: a 4 KiB block inside the parent's data, 1 MiB over the parent's
      // data and 1 MiB over a hole; then a buffered 1 MiB write.
      ASSERT_TRUE(Dd(small, target, 0, 4096, 4096, "4k", Direct::kOutput));
      ASSERT_TRUE(Dd(large, target, 0, 2 * kMiB, kMiB, "1M", Direct::kOutput));
      ASSERT_TRUE(Dd(large, target, 0, 20 * kMiB, kMiB, "1M", Direct::kOutput));
      ASSERT_TRUE(Dd(other, target, 0, 3 * kMiB, kMiB, "1M"));
      // qemu-io with cache=none opens the image with O_DIRECT.
      const bool clone_side = target == flat;
      std::vector<std::string> argv = {"qemu-io", "-t", "none", "-f", clone_side ? "vmdk" : "raw"};
      for (const char* w :
           {"write -P 0x77 8M 1M", "write -P 0x78 12k 4k", "write -P 0x79 30M 4k"}) {
        argv.insert(argv.end(), {"-c", w});
      }
      argv.push_back(clone_side ? m / "base.vmdk" : reference);
      ASSERT_TRUE(RunsOk(argv));
    }
    // Direct reads of what was written directly, buffered, and by qemu-io, and of the
    // parent's data beside it; each compared with the raw copy.
    const std::vector<std::pair<uint64_t, uint64_t>> reads = {
        {4096, 4096},     {0, 16384},        {2 * kMiB, kMiB}, {2 * kMiB + 4096, kMiB},
        {3 * kMiB, kMiB}, {20 * kMiB, kMiB}, {30 * kMiB, kMiB}};
    for (auto [offset, length] : reads) {
      SCOPED_TRACE("direct read at " + std::to_string(offset));
      const std::string got = Path("got.bin"), want = Path("want.bin");
      std::filesystem::remove(got);
      std::filesystem::remove(want);
      ASSERT_TRUE(Dd(flat, got, offset, 0, length, length >= kMiB ? "1M" : "4k", Direct::kInput));
      ASSERT_TRUE(Dd(reference, want, offset, 0, length, "1M"));
      EXPECT_EQ(testing_support::FirstDifference(got, want), "");
    }
    EXPECT_TRUE(RunsOk({"qemu-io", "-t", "none", "-f", "vmdk", "-c", "read -P 0x77 8M 1M", "-c",
                        "read -P 0x78 12k 4k", "-c", "read -P 0x11 16k 4k", m / "base.vmdk"}));
    EXPECT_EQ(testing_support::FirstDifference(flat, reference), "");
    EXPECT_TRUE(m.Unmount());
  }
  // Remounted, a whole-disk read in direct 1 MiB requests still matches the copy.
  MountedClone again(clone, Path("m1"));
  ASSERT_MOUNTED(again);
  const std::string whole = Path("whole.raw");
  ASSERT_TRUE(Dd(again / "base-flat.vmdk", whole, 0, 0, 64 * kMiB, "1M", Direct::kInput));
  EXPECT_EQ(testing_support::FirstDifference(whole, reference), "");
}

}  // namespace
}  // namespace mount_test
