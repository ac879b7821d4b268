// SPDX-License-Identifier: Apache-2.0
// clonectl against images qemu-img makes in every subformat it can write, filled by
// qemu-io at awkward offsets: clonectl export must equal `qemu-img convert -O raw`
// byte for byte, and clonectl inspect must describe the image as qemu does.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/integration_util.h"
#include "tests/support/test_support.h"

namespace integration {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr uint64_t kGrainBytes = 64 * kKiB;  // qemu's default grain
// One grain table maps 512 grains: 32 MiB with 64 KiB grains.
constexpr uint64_t kGrainTableSpanBytes = 512 * kGrainBytes;
// qemu's twoGbMaxExtent* subformats cut the disk into 2 GiB extents.
constexpr uint64_t kSplitExtentBytes = 2 * kGiB;

// Capacities one sector past a grain multiple, so the last grain is partial.
constexpr uint64_t kSmallCapacity = 100 * kMiB + 512;
// Three extents: 2 GiB, 2 GiB and a single sector past 4 GiB (offsets beyond 32 bits).
// Not larger: clonectl reads flat extents' holes, so a flat export costs time per GiB.
constexpr uint64_t kSplitCapacity = 4 * kGiB + 512;

struct Write {
  unsigned pattern;
  uint64_t offset_bytes;
  uint64_t length_bytes;
};

std::string ToQemuIo(const Write& w) {
  char command[96];
  std::snprintf(command, sizeof command, "write -P 0x%02x %llu %llu", w.pattern,
                static_cast<unsigned long long>(w.offset_bytes),
                static_cast<unsigned long long>(w.length_bytes));
  return command;
}

// Disjoint writes covering the awkward cases for a disk of `capacity_bytes`.
std::vector<Write> WritesFor(uint64_t capacity_bytes) {
  std::vector<Write> writes = {
      {0xab, 0, kGrainBytes},                              // exactly the first grain
      {0x5c, 1 * kMiB, 4 * kKiB},                          // grain-aligned, partial grain
      {0x11, kGrainBytes + 512, 3584},                     // sector-aligned inside a grain
      {0x22, 2 * kGrainBytes - 512, 1024},                 // across a grain boundary
      {0x33, 200003, 100},                                 // not even sector-aligned
      {0x77, kGrainTableSpanBytes - 6 * kKiB, 12 * kKiB},  // across a grain-table boundary
      {0x99, capacity_bytes - 512 - 4 * kKiB, 4 * kKiB},   // the last full grain's tail
      {0xee, capacity_bytes - 512, 512},                   // the last sector (partial grain)
  };
  if (capacity_bytes > kSplitExtentBytes) {
    const std::vector<Write> split = {
        {0x61, kSplitExtentBytes - 4 * kKiB, 8 * kKiB},  // across extents 1 and 2
        {0x62, 3 * kGiB + 512, 4 * kKiB},                // inside extent 2, unaligned
        {0x63, kSplitExtentBytes + kGrainTableSpanBytes - 6 * kKiB, 12 * kKiB},  // its GT edge
    };
    writes.insert(writes.end(), split.begin(), split.end());
  }
  return writes;
}

uint64_t TotalBytes(const std::vector<Write>& writes) {
  uint64_t total = 0;
  for (const auto& w : writes) total += w.length_bytes;
  return total;
}

std::vector<std::string> QemuIoCommands(const std::vector<Write>& writes) {
  std::vector<std::string> commands;
  for (const auto& w : writes) commands.push_back(ToQemuIo(w));
  return commands;
}

struct ImageKind {
  const char* name;
  const char* subformat;  // createType of the image under test
  uint64_t capacity_bytes;
  bool converted = false;     // written as monolithicSparse, then `qemu-img convert`ed
  bool zeroed_grain = false;  // `-o zeroed_grain=on`, plus `write -z` over data
};

const ImageKind kImageKinds[] = {
    {"MonolithicSparse", "monolithicSparse", kSmallCapacity},
    {"MonolithicFlat", "monolithicFlat", kSmallCapacity},
    {"TwoGbMaxExtentSparse", "twoGbMaxExtentSparse", kSplitCapacity},
    {"TwoGbMaxExtentFlat", "twoGbMaxExtentFlat", kSplitCapacity},
    {"StreamOptimized", "streamOptimized", kSmallCapacity, /*converted=*/true},
    {"StreamOptimizedOver4GiB", "streamOptimized", kSplitCapacity, /*converted=*/true},
    {"MonolithicSparseZeroedGrain", "monolithicSparse", kSmallCapacity, false,
     /*zeroed_grain=*/true},
};

// `write -z` over written data: whole grains become zeroed grains (GTE 1), partial ones
// are copied-on-write with zeros; one range has no data below it at all.
const std::vector<std::string> kZeroWrites = {
    "write -z 0 64k",          // the 0xab grain, whole
    "write -z 1M 64k",         // the 0x5c grain, whole
    "write -z 33550336 4096",  // inside the 0x77 range, partial grain
    "write -z 50M 128k",       // never written
};

void PrintTo(const ImageKind& kind, std::ostream* os) { *os << kind.name; }

class QemuImageTest : public ::testing::TestWithParam<ImageKind> {
 protected:
  // Builds the image of GetParam() at dir_/disk.vmdk with WritesFor() applied.
  ::testing::AssertionResult MakeImage() {
    const ImageKind& kind = GetParam();
    const std::string size = std::to_string(kind.capacity_bytes);
    const std::string written = kind.converted ? dir_ / "source.vmdk" : image_;
    std::vector<std::string> create = {
        "qemu-img",
        "create",
        "-q",
        "-f",
        "vmdk",
        "-o",
        kind.converted ? "subformat=monolithicSparse" : std::string("subformat=") + kind.subformat};
    if (kind.zeroed_grain) create.insert(create.end(), {"-o", "zeroed_grain=on"});
    create.insert(create.end(), {written, size});
    if (auto r = RunsOk(create); !r) return r;
    if (auto r = QemuIo(written, QemuIoCommands(WritesFor(kind.capacity_bytes))); !r) return r;
    if (kind.zeroed_grain) {
      if (auto r = QemuIo(written, kZeroWrites); !r) return r;
    }
    if (kind.converted) {
      return RunsOk({"qemu-img", "convert", "-q", "-f", "vmdk", "-O", "vmdk", "-o",
                     std::string("subformat=") + kind.subformat, written, image_});
    }
    return ::testing::AssertionSuccess();
  }

  TempDir dir_;
  const std::string image_ = dir_ / "disk.vmdk";
};

TEST_P(QemuImageTest, ExportEqualsQemuImgConvertAsSparseFile) {
  ASSERT_TRUE(MakeImage());
  const std::string out = dir_ / "disk.raw";
  ASSERT_TRUE(ExportMatchesQemu(image_, out));
  // Every write touches at most two grains; the rest of the disk must stay holes.
  EXPECT_LE(testing_support::AllocatedBytes(out), 8 * kMiB);
}

TEST_P(QemuImageTest, InspectJsonReportsCapacityTypeCidAndAllocation) {
  ASSERT_TRUE(MakeImage());
  const ImageKind& kind = GetParam();
  nlohmann::json json = InspectJson(image_);
  ASSERT_TRUE(json.is_object());
  EXPECT_EQ(json["capacity_bytes"], kind.capacity_bytes);
  EXPECT_EQ(json["create_type"], kind.subformat);
  EXPECT_EQ(CidOf(json["cid"]), QemuCid(image_));
  EXPECT_EQ(CidOf(json["parent_cid"]), 0xffffffffu);
  ASSERT_TRUE(json["allocated_bytes"].is_number_unsigned());
  const uint64_t allocated = json["allocated_bytes"].get<uint64_t>();
  uint64_t at_least = TotalBytes(WritesFor(kind.capacity_bytes));
  // kZeroWrites zero the 0xab grain, the 0x5c grain and 4 KiB of the 0x77 range.
  if (kind.zeroed_grain) at_least -= kGrainBytes + 4 * kKiB + 4 * kKiB;
  EXPECT_GE(allocated, at_least);
  EXPECT_LE(allocated, kind.capacity_bytes);
}

TEST_P(QemuImageTest, InspectJsonListsEveryExtent) {
  ASSERT_TRUE(MakeImage());
  const ImageKind& kind = GetParam();
  nlohmann::json json = InspectJson(image_);
  ASSERT_TRUE(json.is_object());
  ASSERT_TRUE(json["chain"].is_array());
  ASSERT_EQ(json["chain"].size(), 1u);
  nlohmann::json& extents = json["chain"][0]["extents"];
  ASSERT_TRUE(extents.is_array());
  const bool split = std::string(kind.subformat).starts_with("twoGbMax");
  ASSERT_EQ(extents.size(), split ? 3u : 1u);
  uint64_t sum = 0;
  for (auto& extent : extents) {
    EXPECT_TRUE(extent["file"].is_string());
    sum += extent["size_bytes"].get<uint64_t>();
  }
  EXPECT_EQ(sum, kind.capacity_bytes);
  if (split) {
    EXPECT_EQ(extents[0]["size_bytes"], kSplitExtentBytes);
    EXPECT_EQ(extents[1]["size_bytes"], kSplitExtentBytes);
  }
}

TEST_P(QemuImageTest, FullCloneIsAMonolithicSparseCopyThatQemuChecksClean) {
  ASSERT_TRUE(MakeImage());
  const std::string clone = dir_ / "full";
  CommandResult r = Clonectl({"clone", image_, clone, "--full"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;  // no progress bar: stderr is not a terminal
  EXPECT_NE(r.out.find("full clone of"), std::string::npos) << r.out;
  EXPECT_TRUE(IsFullCloneOf(clone + "/disk.vmdk", image_));
  // Holes stay holes: no more space than qemu-img's own monolithicSparse copy takes.
  const std::string reference = dir_ / "qemu.vmdk";
  ASSERT_TRUE(RunsOk({"qemu-img", "convert", "-f", "vmdk", "-O", "vmdk", image_, reference}));
  EXPECT_LE(fs::file_size(clone + "/disk.vmdk"), fs::file_size(reference));
  EXPECT_LE(testing_support::AllocatedBytes(clone + "/disk.vmdk"),
            testing_support::AllocatedBytes(reference));
}

// A 1 MiB monolithicFlat image made by qemu-img, for the descriptor quirks below.
bool CreateFlatImage(const std::string& image) {
  return RunsOk(
      {"qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", image, "1M"});
}

// qemu writes CIDs with "%x", without leading zeros: one image in 16 has a 7-digit CID,
// which qemu reads back with "%x" too.
TEST(QemuDescriptorQuirksTest, AcceptsCidWithoutLeadingZeros) {
  TempDir dir;
  const std::string image = dir / "disk.vmdk";
  ASSERT_TRUE(CreateFlatImage(image));
  std::string text = ReadText(image);
  const size_t begin = text.find("\nCID=") + 1;
  text.replace(begin, text.find('\n', begin) - begin, "CID=4c72720");
  WriteText(image, text);
  ASSERT_EQ(QemuCid(image), 0x04c72720u) << text;

  EXPECT_TRUE(ExportMatchesQemu(image, dir / "disk.raw"));
  nlohmann::json json = InspectJson(image);
  ASSERT_TRUE(json.is_object());
  EXPECT_EQ(CidOf(json["cid"]), 0x04c72720u);
}

// The first write through qemu rewrites a text descriptor as one 512-byte block padded
// with NULs (vmdk_write_cid writes its whole descriptor buffer back).
TEST(QemuDescriptorQuirksTest, ReadsTextDescriptorPaddedWithNuls) {
  TempDir dir;
  const std::string image = dir / "disk.vmdk";
  ASSERT_TRUE(CreateFlatImage(image));
  ASSERT_TRUE(QemuIo(image, {"write -P 0x42 4k 4k"}));
  ASSERT_NE(ReadText(image).find('\0'), std::string::npos) << "qemu no longer pads";

  EXPECT_TRUE(ExportMatchesQemu(image, dir / "disk.raw"));
}

// The CID update builds the new descriptor in a buffer holding the old one and writes the
// whole buffer back: when the new text is shorter, the old text's tail stays after the NUL.
// qemu writes CIDs with "%x", so a new CID two or more digits shorter than the old one does
// it in about one update in 256 (the rare "binary data" failures of QemuImageTest on text
// descriptors); a line between CID and parentCID, which the update drops, does it always.
TEST(QemuDescriptorQuirksTest, ReadsTextDescriptorWithOldTextAfterItsNul) {
  TempDir dir;
  const std::string image = dir / "disk.vmdk";
  ASSERT_TRUE(CreateFlatImage(image));
  std::string text = ReadText(image);
  text.insert(text.find("\nparentCID=") + 1, "# a line that the CID update drops\n");
  WriteText(image, text);
  ASSERT_TRUE(QemuIo(image, {"write -P 0x42 4k 4k"}));
  text = ReadText(image);
  const size_t nul = text.find('\0');
  ASSERT_NE(nul, std::string::npos) << "qemu no longer pads";
  ASSERT_NE(text.find_first_not_of('\0', nul), std::string::npos)
      << "qemu left nothing after the NUL";
  const std::optional<uint32_t> cid = QemuCid(image);
  ASSERT_TRUE(cid) << "qemu does not read it either";

  EXPECT_TRUE(ExportMatchesQemu(image, dir / "disk.raw"));
  nlohmann::json json = InspectJson(image);
  ASSERT_TRUE(json.is_object());
  EXPECT_EQ(CidOf(json["cid"]), cid);
}

INSTANTIATE_TEST_SUITE_P(QemuImg, QemuImageTest, ::testing::ValuesIn(kImageKinds),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace integration
