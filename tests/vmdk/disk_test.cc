// SPDX-License-Identifier: Apache-2.0
// Reading whole disks: parent chains (zeroed grains masking the parent, COWD deltas),
// multi-extent descriptors mixing sparse, flat and ZERO extents, concurrent readers, and
// what a text descriptor is when NULs and more follow it.

#include "vmdk/disk.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "common/memory_storage.h"
#include "tests/vmdk/disk_test_util.h"
#include "tests/vmdk/sparse_image_builder.h"

namespace vmdk_test {
namespace {

constexpr uint64_t kGrain = 64 * 1024;
constexpr uint32_t kParentCid = 0x0badcafe;

class DiskTest : public ::testing::Test {
 protected:
  // A 32-grain base with grains 0-3 and 10 holding data.
  SparseImageBuilder Parent() {
    SparseImageBuilder p(4096);
    DescriptorFields fields;
    fields.cid = kParentCid;
    p.Fields(fields);
    for (uint64_t g : {0, 1, 2, 3, 10}) p.SetGrain(g, PatternBytes(kGrain, 100 + g));
    return p;
  }
  static DescriptorFields ChildOf(std::string hint) {
    return {.cid = 0x00c0ffee, .parent_cid = kParentCid, .parent_hint = std::move(hint)};
  }

  common::MemoryStorage storage_;
};

TEST_F(DiskTest, ChildZeroedGrainMasksParentAndHolesFallThrough) {
  SparseImageBuilder parent = Parent();
  storage_.SetFile("vm/base.vmdk", parent.BuildMonolithic("base.vmdk").bytes);
  SparseImageBuilder child(4096);
  child.Fields(ChildOf("base.vmdk"));
  child.SetGrain(1, FilledBytes(kGrain, 0xcc)).SetZeroed(2).SetGrain(20, PatternBytes(kGrain, 9));
  storage_.SetFile("vm/base-000001.vmdk", child.BuildMonolithic("base-000001.vmdk").bytes);

  auto disk = OpenOk(storage_, "vm/base-000001.vmdk");
  ASSERT_TRUE(disk);
  ASSERT_EQ(disk->links().size(), 2u);
  EXPECT_EQ(disk->links()[1]->path(), "vm/base.vmdk");
  EXPECT_EQ(ReadAll(*disk), child.Overlay(parent.Expected()));
  std::vector<MapRun> expected = {{kData, kGrain, 1},
                                  {kData, kGrain, 0},
                                  {kZero, kGrain, 0},
                                  {kData, kGrain, 1},
                                  {kUnallocated, 6 * kGrain, -1},
                                  {kData, kGrain, 1},
                                  {kUnallocated, 9 * kGrain, -1},
                                  {kData, kGrain, 0},
                                  {kUnallocated, 11 * kGrain, -1}};
  EXPECT_EQ(MapAll(*disk), expected);
}

TEST_F(DiskTest, ReadAcrossChildAndParentGrainsAtUnalignedOffsets) {
  SparseImageBuilder parent = Parent();
  storage_.SetFile("base.vmdk", parent.BuildMonolithic("base.vmdk").bytes);
  SparseImageBuilder child(4096);
  child.Fields(ChildOf("base.vmdk")).SetGrain(2, PatternBytes(kGrain, 77)).SetZeroed(3);
  storage_.SetFile("child.vmdk", child.BuildStream("child.vmdk", {}).bytes);
  auto disk = OpenOk(storage_, "child.vmdk");
  ASSERT_TRUE(disk);
  Bytes all = child.Overlay(parent.Expected());
  EXPECT_EQ(ReadRange(*disk, kGrain - 3, 3 * kGrain + 10), Slice(all, kGrain - 3, 3 * kGrain + 10));
  EXPECT_EQ(ReadRange(*disk, 2 * kGrain + 1, 5), Slice(all, 2 * kGrain + 1, 5));
}

TEST_F(DiskTest, CowdDeltaOverMonolithicParentReadsMergedChain) {
  SparseImageBuilder parent = Parent();
  storage_.SetFile("ds/base.vmdk", parent.BuildMonolithic("base.vmdk").bytes);
  SparseImageBuilder delta(4096, 1);  // COWD: 512-byte grains
  delta.Fields(ChildOf("base.vmdk"));
  delta.SetGrain(1, FilledBytes(512, 0xee)).SetGrain(129, PatternBytes(512, 5));
  storage_.SetFile("ds/base-000001-delta.vmdk", delta.BuildCowd().bytes);
  storage_.SetFile("ds/base-000001.vmdk", delta.CowdDescriptor("base-000001-delta.vmdk"));
  auto disk = OpenOk(storage_, "ds/base-000001.vmdk");
  ASSERT_TRUE(disk);
  EXPECT_EQ(ReadAll(*disk), delta.Overlay(parent.Expected()));
  auto m = disk->Map(0, kGrain);
  ASSERT_TRUE(m);
  EXPECT_EQ((MapRun{m.value().state, m.value().length_bytes, m.value().link_index}),
            (MapRun{kData, 512, 1}));
  m = disk->Map(512, kGrain);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.value().link_index, 0);
  EXPECT_EQ(m.value().length_bytes, 512u);
}

TEST_F(DiskTest, AbsoluteParentHintFallsBackToBaseNameNextToChild) {
  SparseImageBuilder parent = Parent();
  storage_.SetFile("vm/base.vmdk", parent.BuildMonolithic("base.vmdk").bytes);
  for (std::string hint : {"/vmfs/volumes/5f00/vm/base.vmdk", "C:\\VMs\\old\\base.vmdk"}) {
    SparseImageBuilder child(4096);
    child.Fields(ChildOf(hint)).SetGrain(5, PatternBytes(kGrain, 1));
    storage_.SetFile("vm/child.vmdk", child.BuildMonolithic("child.vmdk").bytes);
    auto disk = OpenOk(storage_, "vm/child.vmdk");
    ASSERT_TRUE(disk) << hint;
    EXPECT_EQ(disk->links()[1]->path(), "vm/base.vmdk") << hint;
    EXPECT_EQ(ReadAll(*disk), child.Overlay(parent.Expected())) << hint;
  }
}

TEST_F(DiskTest, ThreeLinkChainTakesEachRangeFromTopmostLink) {
  SparseImageBuilder base = Parent();
  storage_.SetFile("b.vmdk", base.BuildMonolithic("b.vmdk").bytes);
  SparseImageBuilder mid(4096);
  mid.Fields({.cid = 0x22222222, .parent_cid = kParentCid, .parent_hint = "b.vmdk"});
  mid.SetGrain(0, FilledBytes(kGrain, 2)).SetGrain(1, FilledBytes(kGrain, 2));
  storage_.SetFile("m.vmdk", mid.BuildMonolithic("m.vmdk").bytes);
  SparseImageBuilder top(4096);
  top.Fields({.cid = 0x33333333, .parent_cid = 0x22222222, .parent_hint = "m.vmdk"});
  top.SetGrain(1, FilledBytes(kGrain, 3)).SetZeroed(10);
  storage_.SetFile("t.vmdk", top.BuildMonolithic("t.vmdk").bytes);
  auto disk = OpenOk(storage_, "t.vmdk");
  ASSERT_TRUE(disk);
  ASSERT_EQ(disk->links().size(), 3u);
  EXPECT_EQ(ReadAll(*disk), top.Overlay(mid.Overlay(base.Expected())));
  std::vector<MapRun> head = {{kData, kGrain, 1}, {kData, kGrain, 0}, {kData, 2 * kGrain, 2}};
  std::vector<MapRun> runs = MapAll(*disk);
  ASSERT_GE(runs.size(), 3u);
  EXPECT_EQ(std::vector<MapRun>(runs.begin(), runs.begin() + 3), head);
}

// twoGbMaxExtentSparse-style: a text descriptor over two sparse extents, a flat extent
// with a file offset, a ZERO extent and a sparse extent with a partial last grain.
class MultiExtentTest : public DiskTest {
 protected:
  void SetUp() override {
    s1_.SetGrain(0, PatternBytes(kGrain, 1)).SetGrain(15, PatternBytes(kGrain, 2));
    s3_.SetGrain(1, PatternBytes(kGrain, 3)).SetZeroed(0);
    storage_.SetFile("d/disk-s001.vmdk", s1_.BuildSplitExtent().bytes);
    storage_.SetFile("d/disk-s003.vmdk", s3_.BuildSplitExtent().bytes);
    flat_ = PatternBytes(kFlatSectors * 512 + 4096, 42);  // data starts 8 sectors in
    storage_.SetFile("d/disk-f002.vmdk", flat_);
    storage_.SetFile("d/disk.vmdk",
                     DescriptorText("twoGbMaxExtentSparse", {},
                                    {"RW 2048 SPARSE \"disk-s001.vmdk\"",
                                     fmt::format("RW {} FLAT \"disk-f002.vmdk\" 8", kFlatSectors),
                                     "RW 384 ZERO", "RW 200 SPARSE \"disk-s003.vmdk\""}));
    expected_ = s1_.Expected();
    expected_.insert(expected_.end(), flat_.begin() + 4096, flat_.end());
    expected_.resize(expected_.size() + 384 * 512);
    Bytes third = s3_.Expected();
    expected_.insert(expected_.end(), third.begin(), third.end());
  }

  static constexpr uint64_t kFlatSectors = 300;
  SparseImageBuilder s1_{2048};
  SparseImageBuilder s3_{200};
  Bytes flat_;
  Bytes expected_;
};

TEST_F(MultiExtentTest, ReadsEveryExtentTypeInDescriptorOrder) {
  auto disk = OpenOk(storage_, "d/disk.vmdk");
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->capacity_bytes(), (2048 + kFlatSectors + 384 + 200) * 512);
  ASSERT_EQ(disk->links()[0]->extents().size(), 4u);
  EXPECT_EQ(ReadAll(*disk), expected_);
}

TEST_F(MultiExtentTest, MapRunsStopAtExtentBoundaries) {
  auto disk = OpenOk(storage_, "d/disk.vmdk");
  ASSERT_TRUE(disk);
  std::vector<MapRun> expected = {{kData, kGrain, 0},    {kUnallocated, 14 * kGrain, -1},
                                  {kData, kGrain, 0},    {kData, kFlatSectors * 512, 0},
                                  {kZero, 384 * 512, 0}, {kZero, kGrain, 0},
                                  {kData, 72 * 512, 0}};
  EXPECT_EQ(MapAll(*disk), expected);
}

TEST_F(MultiExtentTest, ReadsSpanningExtentBoundariesMatch) {
  auto disk = OpenOk(storage_, "d/disk.vmdk");
  ASSERT_TRUE(disk);
  const uint64_t flat_start = 2048 * 512, zero_start = flat_start + kFlatSectors * 512;
  const uint64_t s3_start = zero_start + 384 * 512;
  for (auto [offset, length] : std::vector<std::pair<uint64_t, size_t>>{
           {flat_start - 100, 200},
           {zero_start - 1, 2},
           {s3_start - 700, 70000},
           {flat_start - kGrain - 1, kFlatSectors * 512 + 384 * 512 + kGrain + 2},
           {disk->capacity_bytes() - 1, 1}}) {
    EXPECT_EQ(ReadRange(*disk, offset, length), Slice(expected_, offset, length)) << offset;
  }
}

TEST_F(DiskTest, ConcurrentReadersSeeTheSameBytes) {
  SparseImageBuilder parent = Parent();
  storage_.SetFile("p.vmdk", parent.BuildStream("p.vmdk", {}).bytes);
  SparseImageBuilder child(4096, 8, 128);  // small grains, several tables
  child.Fields(ChildOf("p.vmdk"));
  for (uint64_t g = 0; g < 512; g += 3) child.SetGrain(g, PatternBytes(4096, g));
  for (uint64_t g = 1; g < 512; g += 7) child.SetZeroed(g);
  storage_.SetFile("c.vmdk", child.BuildMonolithic("c.vmdk").bytes);
  auto disk = OpenOk(storage_, "c.vmdk");
  ASSERT_TRUE(disk);
  const Bytes expected = child.Overlay(parent.Expected());

  constexpr int kThreads = 4;
  std::vector<int> mismatches(kThreads, 0), failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      Bytes buf;
      for (int i = 0; i < 300; ++i) {
        uint64_t offset = rng() % expected.size();
        size_t length = 1 + rng() % std::min<uint64_t>(3 * kGrain, expected.size() - offset);
        buf.assign(length, std::byte{0xff});
        if (!disk->Read(offset, buf).ok()) {
          ++failures[t];
        } else if (!std::equal(buf.begin(), buf.end(), expected.begin() + offset)) {
          ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(kThreads, 0));
  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
}

// What QEMU's CID update (vmdk_write_cid) writes over a text descriptor: the text with
// the CID line replaced, its NUL, then the old text's bytes that the new, shorter text no
// longer covers, and NULs to the end of the sector.
std::string QemuCidUpdate(const std::string& old_text, const std::string& new_cid) {
  const size_t cid = old_text.find("CID=") + 4, parent = old_text.find("parentCID");
  const std::string updated = old_text.substr(0, cid) + new_cid + "\n" + old_text.substr(parent);
  std::string sector = old_text;
  sector.resize(512, '\0');
  sector.replace(0, updated.size(), updated);
  sector[updated.size()] = '\0';
  return sector;
}

// A new CID two digits shorter than the old (qemu writes "%x"; one update in 256) leaves
// the old text's last byte after the NUL. QEMU reads the descriptor up to the NUL.
TEST_F(DiskTest, TextDescriptorEndsAtItsFirstNulWhateverQemuLeftAfterIt) {
  const Bytes flat = PatternBytes(16 * 512, 5);
  storage_.SetFile("d-flat.vmdk", flat);
  DescriptorFields fields;
  fields.cid = 0xa5fb7651;
  const std::string text = QemuCidUpdate(
      DescriptorText("monolithicFlat", fields, {"RW 16 FLAT \"d-flat.vmdk\" 0"}), "575784");
  ASSERT_NE(text.find_first_not_of('\0', text.find('\0')), std::string::npos) << "no old text";
  storage_.SetFile("d.vmdk", text);

  auto disk = OpenOk(storage_, "d.vmdk");
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->links()[0]->descriptor().cid(), 0x575784u);
  EXPECT_EQ(ReadAll(*disk), flat);
}

TEST_F(DiskTest, BinaryDataWithoutSparseMagicIsNotAVmdk) {
  // A qcow2 header: magic, version 3, then more fields.
  std::string qcow2("QFI\xfb\0\0\0\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x10", 24);
  qcow2.resize(512, '\0');
  storage_.SetFile("d.vmdk", qcow2);
  EXPECT_TRUE(
      FailsWith(OpenMapAndRead(storage_, "d.vmdk"), EINVAL, {"d.vmdk", "not a VMDK: binary data"}));
}

TEST_F(DiskTest, NulPaddedDescriptorWithASyntaxErrorNamesTheLine) {
  std::string text = DescriptorText("monolithicFlat", {}, {"RW 16 FLOPPY \"d-flat.vmdk\" 0"});
  text.resize(1024, '\0');
  storage_.SetFile("d.vmdk", text);
  EXPECT_TRUE(FailsWith(OpenMapAndRead(storage_, "d.vmdk"), EINVAL,
                        {"d.vmdk: descriptor: line 9", "FLOPPY"}));
}

}  // namespace
}  // namespace vmdk_test
