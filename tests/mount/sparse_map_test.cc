// SPDX-License-Identifier: Apache-2.0
// SEEK_DATA/SEEK_HOLE on the presented flat disk report the merged allocation of the
// clone's delta and its parent, with discarded ranges as holes: qemu-img map sees data
// exactly where the parent and the clone wrote it, and cp --sparse=always copies the
// disk allocating about as much as that data.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using integration::ParseJson;
using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;  // [begin, end) in bytes

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kCapacity = 32 * kMiB;

// What the tests write, and where data must then be (the delta's blocks are 4 KiB, so
// an unaligned write makes its whole block data).
const std::vector<std::string> kCloneWrites = {
    "write -P 0x22 4M 64k",
    "write -P 0x23 10489856 4k",   // 10 MiB + 4 KiB
    "write -P 0x24 20971620 100",  // 20 MiB + 100
};
const Ranges kExpectedData = {
    {1 * kMiB, 1 * kMiB + 256 * kKiB},             // the parent's data, before the hole
    {1 * kMiB + 512 * kKiB, 2 * kMiB},             // and after it
    {4 * kMiB, 4 * kMiB + 64 * kKiB},              // the clone's
    {10 * kMiB + 4 * kKiB, 10 * kMiB + 8 * kKiB},  // the clone's, one block
    {20 * kMiB, 20 * kMiB + 4 * kKiB},             // the block holding the 100 bytes
};
constexpr uint64_t kExpectedDataBytes = 256 * kKiB + 512 * kKiB + 64 * kKiB + 8 * kKiB;

// The ranges `qemu-img map --output=json` reports as holding data (`key` true, or false
// for "zero"), adjacent ones merged.
Ranges MappedRanges(const std::string& json_text, const std::string& key, bool value) {
  nlohmann::json map = ParseJson(json_text);
  Ranges ranges;
  if (!map.is_array()) {
    ADD_FAILURE() << "qemu-img map output is not a JSON list:\n" << json_text;
    return ranges;
  }
  for (const auto& entry : map) {
    if (entry[key].get<bool>() != value) continue;
    const uint64_t begin = entry["start"].get<uint64_t>();
    const uint64_t end = begin + entry["length"].get<uint64_t>();
    if (!ranges.empty() && ranges.back().second == begin) {
      ranges.back().second = end;
    } else {
      ranges.emplace_back(begin, end);
    }
  }
  return ranges;
}

class SparseMapTest : public MountTest {
 protected:
  // A parent with 1 MiB of data at 1 MiB; its clone, mounted, with kCloneWrites and a
  // punched hole in the middle of the parent's data.
  void SetUp() override {
    parent_ = MakeParent("base.vmdk", std::to_string(kCapacity), {"write -P 0x11 1M 1M"});
    parent_sha_ = testing_support::Sha256OfFile(parent_);
    mount_ = std::make_unique<MountedClone>(Clone(parent_, "c1"), Path("m"));
    ASSERT_MOUNTED(*mount_);
    ASSERT_TRUE(QemuIo(flat_descriptor(), kCloneWrites));
    ASSERT_TRUE(RunsOk({"fallocate", "-p", "-o", std::to_string(1 * kMiB + 256 * kKiB), "-l",
                        std::to_string(256 * kKiB), flat()}));
  }

  std::string flat() const { return *mount_ / "base-flat.vmdk"; }
  std::string flat_descriptor() const { return *mount_ / "base.vmdk"; }

  std::string parent_;
  std::string parent_sha_;
  std::unique_ptr<MountedClone> mount_;
};

TEST_F(SparseMapTest, QemuImgMapOfTheFlatDiskReportsDataExactlyWhereItWasWritten) {
  CommandResult r = testing_support::Run({"qemu-img", "map", "--output=json", "-f", "raw", flat()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(MappedRanges(r.out, "data", true), kExpectedData) << r.out;
  // The punched range reads as zeros; the parent still holds its data there.
  EXPECT_TRUE(QemuIoUncached(flat_descriptor(), {"read -P 0x11 1M 256k", "read -P 0 1280k 256k",
                                                 "read -P 0x11 1536k 512k"}));
  EXPECT_EQ(testing_support::Sha256OfFile(parent_), parent_sha_);
}

TEST_F(SparseMapTest, QemuImgMapOfThePresentedDescriptorReportsNonZeroExactlyThere) {
  CommandResult r = testing_support::Run({"qemu-img", "map", "--output=json", flat_descriptor()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(MappedRanges(r.out, "zero", false), kExpectedData) << r.out;
}

TEST_F(SparseMapTest, SeekDataAndSeekHoleWalkTheSameRanges) {
  const int fd = open(flat().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Ranges found;
  for (off_t pos = 0;;) {
    const off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      EXPECT_EQ(errno, ENXIO);
      break;
    }
    const off_t hole = lseek(fd, data, SEEK_HOLE);
    ASSERT_GT(hole, data);
    found.emplace_back(data, hole);
    pos = hole;
  }
  // The end of the disk is a hole, and nothing lies past it.
  EXPECT_EQ(lseek(fd, kCapacity - 1, SEEK_HOLE), static_cast<off_t>(kCapacity - 1));
  EXPECT_EQ(lseek(fd, kCapacity, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  close(fd);
  EXPECT_EQ(found, kExpectedData);
}

TEST_F(SparseMapTest, CpSparseAlwaysCopiesTheSameContentAllocatingAboutTheData) {
  const std::string copy = Path("copy.raw");
  ASSERT_TRUE(RunsOk({"cp", "--sparse=always", flat(), copy}));
  EXPECT_TRUE(RunsOk({"cmp", flat(), copy}));
  const uint64_t allocated = testing_support::AllocatedBytes(copy);
  EXPECT_GE(allocated, kExpectedDataBytes);
  EXPECT_LE(allocated, kExpectedDataBytes + 256 * kKiB) << "the holes were copied as data";
}

}  // namespace
}  // namespace mount_test
