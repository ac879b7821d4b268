// SPDX-License-Identifier: Apache-2.0
#include "vmdk/descriptor.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmdk {

// Readable failure output for extent comparisons (found by argument-dependent lookup).
void PrintTo(const ExtentLine& e, std::ostream* os) {
  *os << ToString(e.access) << " " << e.size_sectors << " " << ToString(e.type) << " \""
      << e.file_name << "\" offset=";
  if (e.offset_sectors) {
    *os << *e.offset_sectors;
  } else {
    *os << "none";
  }
  for (const std::string& field : e.extra_fields) *os << " [" << field << "]";
}

namespace {

// Real descriptors from shared/testdata/vmdk-samples (see its SOURCES.md), byte for byte,
// trailing spaces included. Embedded so that the unit tests depend on no path.

// vmware-vdiskmanager/monolithicFlat.vmdk
constexpr std::string_view kVdiskmanagerMonolithicFlat =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=00000000\n"
    "parentCID=ffffffff\n"
    "isNativeSnapshot=\"no\"\n"
    "createType=\"monolithicFlat\"\n"
    "\n"
    "# Extent description\n"
    "RW 20480 FLAT \"monolithicFlat-flat.vmdk\" 0\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"buslogic\"\n"
    "ddb.geometry.sectors = \"17\"\n"
    "ddb.geometry.heads = \"4\"\n"
    "ddb.geometry.cylinders = \"301\"\n"
    "ddb.uuid = \"60 00 C2 9a 1d 7b 49 44-dc 53 e6 d3 e5 89 7b 0d\"\n"
    "ddb.longContentID = \"c30e9133f6a8e34df61188c51010a8cd\"\n"
    "ddb.encoding = \"UTF-8\"\n"
    "ddb.toolsVersion = \"1\"\n"
    "ddb.virtualHWVersion = \"7\"\n"
    "ddb.deletable = \"true\"\n";

// vmware-vdiskmanager/twoGbMaxExtentFlat.vmdk
constexpr std::string_view kVdiskmanagerTwoGbMaxExtentFlat =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=00000000\n"
    "parentCID=ffffffff\n"
    "isNativeSnapshot=\"no\"\n"
    "createType=\"twoGbMaxExtentFlat\"\n"
    "\n"
    "# Extent description\n"
    "RW 20480 FLAT \"twoGbMaxExtentFlat-f001.vmdk\" 0\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"buslogic\"\n"
    "ddb.geometry.sectors = \"17\"\n"
    "ddb.geometry.heads = \"4\"\n"
    "ddb.geometry.cylinders = \"301\"\n"
    "ddb.uuid = \"60 00 C2 97 a7 3a 9a c3-5b c5 3e a3 de de c5 7e\"\n"
    "ddb.longContentID = \"956e2aab75a85750b308b2992866acd6\"\n"
    "ddb.encoding = \"UTF-8\"\n"
    "ddb.toolsVersion = \"1\"\n"
    "ddb.virtualHWVersion = \"7\"\n"
    "ddb.deletable = \"true\"\n";

// vmware-vdiskmanager/twoGbMaxExtentSparse.vmdk
constexpr std::string_view kVdiskmanagerTwoGbMaxExtentSparse =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=00000000\n"
    "parentCID=ffffffff\n"
    "isNativeSnapshot=\"no\"\n"
    "createType=\"twoGbMaxExtentSparse\"\n"
    "\n"
    "# Extent description\n"
    "RW 20480 SPARSE \"twoGbMaxExtentSparse-s001.vmdk\"\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"buslogic\"\n"
    "ddb.geometry.sectors = \"17\"\n"
    "ddb.geometry.heads = \"4\"\n"
    "ddb.geometry.cylinders = \"301\"\n"
    "ddb.uuid = \"60 00 C2 9a dc 4a 12 0f-2a cb 5c 02 7e cf 6d 0e\"\n"
    "ddb.longContentID = \"b93eae20bf0418af3d6428e797798347\"\n"
    "ddb.encoding = \"UTF-8\"\n"
    "ddb.toolsVersion = \"1\"\n"
    "ddb.virtualHWVersion = \"7\"\n"
    "ddb.deletable = \"true\"\n";

// descriptors/vdiskmanager-vmfs-extent-with-offset.vmdk
constexpr std::string_view kVdiskmanagerVmfsWithOffset =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=00000000\n"
    "parentCID=ffffffff\n"
    "isNativeSnapshot=\"no\"\n"
    "createType=\"vmfs\"\n"
    "\n"
    "# Extent description\n"
    "RW 20480 VMFS \"4-flat.vmdk\" 0\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.deletable = \"true\"\n"
    "ddb.virtualHWVersion = \"7\"\n"
    "ddb.toolsVersion = \"1\"\n"
    "ddb.encoding = \"UTF-8\"\n"
    "ddb.longContentID = \"2d3c3176ab899b51cb735b4f18eac6ea\"\n"
    "ddb.uuid = \"60 00 C2 90 38 f6 55 c2-c3 dd e6 80 96 81 12 d8\"\n"
    "ddb.geometry.cylinders = \"301\"\n"
    "ddb.geometry.heads = \"4\"\n"
    "ddb.geometry.sectors = \"17\"\n"
    "ddb.adapterType = \"buslogic\"\n";

// descriptors/vmware-player9-monolithicSparse-descriptor.txt
constexpr std::string_view kPlayer9MonolithicSparse =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "encoding=\"windows-1252\"\n"
    "CID=fffffffe\n"
    "parentCID=ffffffff\n"
    "isNativeSnapshot=\"no\"\n"
    "createType=\"monolithicSparse\"\n"
    "\n"
    "# Extent description\n"
    "RW 16777216 SPARSE \"test1.vmdk\"\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.virtualHWVersion = \"9\"\n"
    "ddb.longContentID = \"e61f2478a1f3c8bc7c3a8f36fffffffe\"\n"
    "ddb.uuid = \"60 00 C2 99 3c 3b c5 c0-29 99 4b e2 5b 11 a2 45\"\n"
    "ddb.geometry.cylinders = \"16383\"\n"
    "ddb.geometry.heads = \"16\"\n"
    "ddb.geometry.sectors = \"63\"\n"
    "ddb.adapterType = \"ide\"\n";

// descriptors/workstation-hw13-twoGbMaxExtentSparse-16extents.vmdk
constexpr std::string_view kWorkstation16Extents =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "encoding=\"UTF-8\"\n"
    "CID=216bc064\n"
    "parentCID=ffffffff\n"
    "createType=\"twoGbMaxExtentSparse\"\n"
    "\n"
    "# Extent description\n"
    "RW 8323072 SPARSE \"disk-s001.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s002.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s003.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s004.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s005.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s006.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s007.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s008.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s009.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s010.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s011.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s012.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s013.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s014.vmdk\"\n"
    "RW 8323072 SPARSE \"disk-s015.vmdk\"\n"
    "RW 983040 SPARSE \"disk-s016.vmdk\"\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"lsilogic\"\n"
    "ddb.geometry.cylinders = \"7832\"\n"
    "ddb.geometry.heads = \"255\"\n"
    "ddb.geometry.sectors = \"63\"\n"
    "ddb.longContentID = \"3ca4d6ec709912129cf7ecb7216bc064\"\n"
    "ddb.toolsInstallType = \"1\"\n"
    "ddb.toolsVersion = \"10240\"\n"
    "ddb.uuid = \"60 00 C2 92 7b f4 0d ee-e9 08 12 5d bc 4f ab 26\"\n"
    "ddb.virtualHWVersion = \"13\"\n";

// esxi/vmfs_thick.vmdk
constexpr std::string_view kEsxiVmfsThick =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "encoding=\"UTF-8\"\n"
    "CID=0172e8a4\n"
    "parentCID=ffffffff\n"
    "createType=\"vmfs\"\n"
    "\n"
    "# Extent description\n"
    "RW 4096 VMFS \"vmfs_thick-flat.vmdk\"\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"lsilogic\"\n"
    "ddb.geometry.cylinders = \"2\"\n"
    "ddb.geometry.heads = \"64\"\n"
    "ddb.geometry.sectors = \"32\"\n"
    "ddb.longContentID = \"c493b057f416b9534001df440172e8a4\"\n"
    "ddb.uuid = \"60 00 C2 98 5d 08 de f2-a0 14 2e 05 94 9d d8 38\"\n"
    "ddb.virtualHWVersion = \"14\"\n";

// esxi/vmfs_thick-000001.vmdk
constexpr std::string_view kEsxiVmfsThickSnapshot =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "encoding=\"UTF-8\"\n"
    "CID=8f67ca74\n"
    "parentCID=0172e8a4\n"
    "createType=\"vmfsSparse\"\n"
    "parentFileNameHint=\"vmfs_thick.vmdk\"\n"
    "# Extent description\n"
    "RW 4096 VMFSSPARSE \"vmfs_thick-000001-delta.vmdk\"\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.longContentID = \"4b98b55ba6a6bc2e8fd6eb368f67ca74\"\n";

// ovftool/ttylinux-pc_i486-16.1-disk1.truncated.vmdk (descriptor embedded in the sparse extent)
constexpr std::string_view kOvftoolTtylinux =
    "# Disk DescriptorFile\n"
    "version=1 \n"
    "CID=bb17cc39 \n"
    "parentCID=ffffffff \n"
    "createType=\"streamOptimized\" \n"
    "\n"
    "# Extent description\n"
    "RDONLY 61440 SPARSE \"generated-stream.vmdk\"\n"
    "\n"
    "# The Disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"lsilogic\"\n"
    "ddb.geometry.cylinders = \"30\"\n"
    "ddb.geometry.heads = \"64\"\n"
    "ddb.geometry.sectors = \"32\"\n"
    "ddb.longContentID = \"9a9f80c179b1ce5d304a2706b42bdebe\"\n"
    "ddb.virtualHWVersion = \"10\"\n";

// third-party/virtualbox/ubuntu.2.0-disk1.vmdk (descriptor embedded in the sparse extent)
constexpr std::string_view kVirtualBoxStream =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=255a27cd\n"
    "parentCID=ffffffff\n"
    "createType=\"streamOptimized\"\n"
    "\n"
    "# Extent description\n"
    "RDONLY 16777216 SPARSE \"ubuntu.2.0-disk1.vmdk\"\n"
    "\n"
    "# The disk Data Base \n"
    "#DDB\n"
    "\n"
    "ddb.virtualHWVersion = \"4\"\n"
    "ddb.adapterType=\"ide\"\n"
    "ddb.geometry.cylinders=\"16383\"\n"
    "ddb.geometry.heads=\"16\"\n"
    "ddb.geometry.sectors=\"63\"\n"
    "ddb.uuid.image=\"428fbafb-8694-4ee2-9ce8-333d77f90140\"\n"
    "ddb.uuid.parent=\"00000000-0000-0000-0000-000000000000\"\n"
    "ddb.uuid.modification=\"00000000-0000-0000-0000-000000000000\"\n"
    "ddb.uuid.parentmodification=\"00000000-0000-0000-0000-000000000000\"\n"
    "ddb.comment=\"\"\n";

// third-party/vmdk-stream-converter/streamOptimizedWithMarkers.vmdk (descriptor embedded in the
// sparse extent)
constexpr std::string_view kStreamConverter =
    "# Description file created by VMDK stream converter\n"
    "version=1\n"
    "# Believe this is random\n"
    "CID=7e5b80a7\n"
    "# Indicates no parent\n"
    "parentCID=ffffffff\n"
    "createType=\"streamOptimized\"\n"
    "\n"
    "# Extent description\n"
    "RDONLY 2048 SPARSE \"call-me-stream.vmdk\"\n"
    "\n"
    "# The Disk Data Base\n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"lsilogic\"\n"
    "# 2048 / 63 / 255 rounded up\n"
    "ddb.geometry.cylinders = \"1\"\n"
    "ddb.geometry.heads = \"255\"\n"
    "ddb.geometry.sectors = \"63\"\n"
    "# Believe this is random\n"
    "ddb.longContentID = \"8f15b3d0009d9a3f456ff7b28d324d2a\"\n"
    "ddb.virtualHWVersion = \"11\"";

ExtentLine Extent(ExtentAccess access, uint64_t size_sectors, ExtentType type,
                  std::string file_name = "", std::optional<uint64_t> offset_sectors = {},
                  std::vector<std::string> extra_fields = {}) {
  ExtentLine extent;
  extent.access = access;
  extent.size_sectors = size_sectors;
  extent.type = type;
  extent.file_name = std::move(file_name);
  extent.offset_sectors = offset_sectors;
  extent.extra_fields = std::move(extra_fields);
  return extent;
}

constexpr auto kRW = ExtentAccess::kReadWrite;

// Parses text that must be valid; fails the test (and returns an empty descriptor) if not.
Descriptor MustParse(std::string_view text) {
  Result<Descriptor> parsed = Descriptor::Parse(text);
  EXPECT_TRUE(parsed.has_value()) << parsed.error().message();
  return parsed ? std::move(parsed).value() : Descriptor::CreateEmpty();
}

// The message of the EINVAL that parsing text must fail with.
std::string ParseError(std::string_view text) {
  Result<Descriptor> parsed = Descriptor::Parse(text);
  if (parsed) return "<parsed>";
  if (parsed.error().code() != EINVAL) {
    return "<code " + std::to_string(parsed.error().code()) + "> " + parsed.error().message();
  }
  return parsed.error().message();
}

// text with its one occurrence of `from` replaced by `to`.
std::string Replace(std::string_view text, std::string_view from, std::string_view to) {
  std::string out(text);
  size_t at = out.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(out.find(from, at + 1), std::string::npos) << "more than one " << from;
  if (at != std::string::npos) out.replace(at, from.size(), to);
  return out;
}

std::string ToCrlf(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// A minimal header so that the line under test is line 3.
constexpr std::string_view kHead = "# Disk DescriptorFile\nversion=1\n";

std::string WithHead(std::string_view line) { return std::string(kHead) + std::string(line); }

// ---- Every real sample -------------------------------------------------------------------

struct Sample {
  const char* name;
  std::string_view text;
};

void PrintTo(const Sample& sample, std::ostream* os) { *os << sample.name; }

class DescriptorSampleTest : public testing::TestWithParam<Sample> {};

TEST_P(DescriptorSampleTest, RoundTripsByteForByte) {
  EXPECT_EQ(MustParse(GetParam().text).ToString(), GetParam().text);
}

TEST_P(DescriptorSampleTest, RoundTripsByteForByteWithCrlf) {
  std::string crlf = ToCrlf(GetParam().text);
  Descriptor lf = MustParse(GetParam().text);
  Descriptor d = MustParse(crlf);
  EXPECT_EQ(d.ToString(), crlf);
  EXPECT_EQ(d.Entries(), lf.Entries());
  EXPECT_EQ(d.extents(), lf.extents());
}

TEST_P(DescriptorSampleTest, SetExtentsWithTheSameExtentsKeepsTheText) {
  Descriptor d = MustParse(GetParam().text);
  d.SetExtents(d.extents());
  EXPECT_EQ(d.ToString(), GetParam().text);
}

TEST_P(DescriptorSampleTest, FormatExtentLineReproducesEveryExtentLine) {
  Descriptor d = MustParse(GetParam().text);
  for (const ExtentLine& extent : d.extents()) {
    EXPECT_NE(GetParam().text.find(FormatExtentLine(extent) + "\n"), std::string_view::npos)
        << FormatExtentLine(extent);
  }
}

TEST_P(DescriptorSampleTest, RegeneratedEntriesParseBackToTheSameValues) {
  Descriptor original = MustParse(GetParam().text);
  Descriptor d = original;
  for (const auto& [key, value] : original.Entries()) d.Set(key, value);
  std::vector<ExtentLine> extents = original.extents();
  for (ExtentLine& extent : extents) extent.size_sectors += 1;  // forces regeneration
  d.SetExtents(extents);
  Descriptor reparsed = MustParse(d.ToString());
  EXPECT_EQ(reparsed.Entries(), original.Entries());
  ASSERT_EQ(reparsed.extents().size(), extents.size());
  for (size_t i = 0; i < extents.size(); ++i) {
    EXPECT_EQ(reparsed.extents()[i].size_sectors, extents[i].size_sectors);
    EXPECT_EQ(reparsed.extents()[i].file_name, extents[i].file_name);
    EXPECT_EQ(reparsed.extents()[i].type, extents[i].type);
    EXPECT_EQ(reparsed.extents()[i].access, extents[i].access);
  }
}

INSTANTIATE_TEST_SUITE_P(
    DescriptorSamples, DescriptorSampleTest,
    testing::Values(Sample{"VdiskmanagerMonolithicFlat", kVdiskmanagerMonolithicFlat},
                    Sample{"VdiskmanagerTwoGbMaxExtentFlat", kVdiskmanagerTwoGbMaxExtentFlat},
                    Sample{"VdiskmanagerTwoGbMaxExtentSparse", kVdiskmanagerTwoGbMaxExtentSparse},
                    Sample{"VdiskmanagerVmfsWithOffset", kVdiskmanagerVmfsWithOffset},
                    Sample{"Player9MonolithicSparse", kPlayer9MonolithicSparse},
                    Sample{"Workstation16Extents", kWorkstation16Extents},
                    Sample{"EsxiVmfsThick", kEsxiVmfsThick},
                    Sample{"EsxiVmfsThickSnapshot", kEsxiVmfsThickSnapshot},
                    Sample{"OvftoolTtylinux", kOvftoolTtylinux},
                    Sample{"VirtualBoxStream", kVirtualBoxStream},
                    Sample{"StreamConverter", kStreamConverter}),
    [](const testing::TestParamInfo<Sample>& info) { return std::string(info.param.name); });

// ---- Typed values of the samples ---------------------------------------------------------

TEST(DescriptorTest, ReadsVdiskmanagerMonolithicFlat) {
  Descriptor d = MustParse(kVdiskmanagerMonolithicFlat);
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.cid(), 0u);
  EXPECT_EQ(d.parent_cid(), kNoParentCid);
  EXPECT_EQ(d.create_type(), "monolithicFlat");
  EXPECT_EQ(d.parent_file_name_hint(), std::nullopt);
  EXPECT_EQ(d.Get("isNativeSnapshot"), "no");
  EXPECT_EQ(d.Get("encoding"), std::nullopt);
  EXPECT_EQ(d.Get("ddb.encoding"), "UTF-8");
  EXPECT_EQ(d.Get("ddb.adapterType"), "buslogic");
  EXPECT_EQ(d.Get("ddb.uuid"), "60 00 C2 9a 1d 7b 49 44-dc 53 e6 d3 e5 89 7b 0d");
  EXPECT_EQ(d.Entries().size(), 15u);
  ASSERT_EQ(d.extents().size(), 1u);
  EXPECT_EQ(d.extents()[0], Extent(kRW, 20480, ExtentType::kFlat, "monolithicFlat-flat.vmdk", 0));
  EXPECT_EQ(d.capacity_sectors(), 20480u);
}

TEST(DescriptorTest, ReadsVmfsExtentWithOffset) {
  Descriptor d = MustParse(kVdiskmanagerVmfsWithOffset);
  EXPECT_EQ(d.create_type(), "vmfs");
  ASSERT_EQ(d.extents().size(), 1u);
  EXPECT_EQ(d.extents()[0], Extent(kRW, 20480, ExtentType::kVmfs, "4-flat.vmdk", 0));
  EXPECT_EQ(d.Get("ddb.geometry.cylinders"), "301");
}

TEST(DescriptorTest, ReadsPlayerDescriptorWithPlaceholderCid) {
  Descriptor d = MustParse(kPlayer9MonolithicSparse);
  EXPECT_EQ(d.Get("encoding"), "windows-1252");
  EXPECT_EQ(d.cid(), 0xfffffffeu);
  EXPECT_EQ(d.parent_cid(), kNoParentCid);
  EXPECT_EQ(d.create_type(), "monolithicSparse");
  ASSERT_EQ(d.extents().size(), 1u);
  EXPECT_EQ(d.extents()[0], Extent(kRW, 16777216, ExtentType::kSparse, "test1.vmdk"));
  EXPECT_EQ(d.Get("ddb.longContentID"), "e61f2478a1f3c8bc7c3a8f36fffffffe");
}

TEST(DescriptorTest, ReadsSixteenExtentsAndSumsTheirSizes) {
  Descriptor d = MustParse(kWorkstation16Extents);
  EXPECT_EQ(d.cid(), 0x216bc064u);
  EXPECT_EQ(d.create_type(), "twoGbMaxExtentSparse");
  ASSERT_EQ(d.extents().size(), 16u);
  for (size_t i = 0; i < 15; ++i) {
    EXPECT_EQ(d.extents()[i],
              Extent(kRW, 8323072, ExtentType::kSparse,
                     "disk-s0" + std::string(i < 9 ? "0" : "") + std::to_string(i + 1) + ".vmdk"));
  }
  EXPECT_EQ(d.extents()[15], Extent(kRW, 983040, ExtentType::kSparse, "disk-s016.vmdk"));
  EXPECT_EQ(d.capacity_sectors(), 15u * 8323072 + 983040);
  EXPECT_EQ(d.Get("ddb.toolsInstallType"), "1");
}

TEST(DescriptorTest, ReadsEsxiVmfsDescriptorWithoutOffset) {
  Descriptor d = MustParse(kEsxiVmfsThick);
  EXPECT_EQ(d.cid(), 0x0172e8a4u);
  EXPECT_EQ(d.create_type(), "vmfs");
  ASSERT_EQ(d.extents().size(), 1u);
  EXPECT_EQ(d.extents()[0], Extent(kRW, 4096, ExtentType::kVmfs, "vmfs_thick-flat.vmdk"));
  EXPECT_EQ(d.extents()[0].offset_sectors, std::nullopt);
}

TEST(DescriptorTest, ReadsEsxiSnapshotParentLink) {
  Descriptor d = MustParse(kEsxiVmfsThickSnapshot);
  EXPECT_EQ(d.cid(), 0x8f67ca74u);
  EXPECT_EQ(d.parent_cid(), 0x0172e8a4u);
  EXPECT_EQ(d.create_type(), "vmfsSparse");
  EXPECT_EQ(d.parent_file_name_hint(), "vmfs_thick.vmdk");
  ASSERT_EQ(d.extents().size(), 1u);
  EXPECT_EQ(d.extents()[0],
            Extent(kRW, 4096, ExtentType::kVmfsSparse, "vmfs_thick-000001-delta.vmdk"));
  EXPECT_EQ(d.Get("ddb.geometry.heads"), std::nullopt);
}

TEST(DescriptorTest, ReadsOvftoolValuesWithTrailingSpaces) {
  Descriptor d = MustParse(kOvftoolTtylinux);
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.cid(), 0xbb17cc39u);
  EXPECT_EQ(d.parent_cid(), kNoParentCid);
  EXPECT_EQ(d.create_type(), "streamOptimized");
  EXPECT_EQ(d.Get("version"), "1");
  ASSERT_EQ(d.extents().size(), 1u);
  EXPECT_EQ(d.extents()[0],
            Extent(ExtentAccess::kReadOnly, 61440, ExtentType::kSparse, "generated-stream.vmdk"));
}

TEST(DescriptorTest, ReadsVirtualBoxUnspacedDdbEntries) {
  Descriptor d = MustParse(kVirtualBoxStream);
  EXPECT_EQ(d.cid(), 0x255a27cdu);
  EXPECT_EQ(d.Get("ddb.adapterType"), "ide");
  EXPECT_EQ(d.Get("ddb.uuid.image"), "428fbafb-8694-4ee2-9ce8-333d77f90140");
  EXPECT_EQ(d.Get("ddb.comment"), "");
  EXPECT_EQ(d.extents()[0].access, ExtentAccess::kReadOnly);
  EXPECT_EQ(d.capacity_sectors(), 16777216u);
}

TEST(DescriptorTest, ReadsInterleavedCommentsAndTextWithoutFinalNewline) {
  Descriptor d = MustParse(kStreamConverter);
  EXPECT_EQ(d.cid(), 0x7e5b80a7u);
  EXPECT_EQ(d.Get("ddb.virtualHWVersion"), "11");
  EXPECT_EQ(d.Entries(), (std::vector<std::pair<std::string, std::string>>{
                             {"version", "1"},
                             {"CID", "7e5b80a7"},
                             {"parentCID", "ffffffff"},
                             {"createType", "streamOptimized"},
                             {"ddb.adapterType", "lsilogic"},
                             {"ddb.geometry.cylinders", "1"},
                             {"ddb.geometry.heads", "255"},
                             {"ddb.geometry.sectors", "63"},
                             {"ddb.longContentID", "8f15b3d0009d9a3f456ff7b28d324d2a"},
                             {"ddb.virtualHWVersion", "11"},
                         }));
}

// ---- Lexical rules -----------------------------------------------------------------------

TEST(DescriptorTest, RoundTripsMixedLineEndings) {
  const std::string text = "# Disk DescriptorFile\r\nversion=1\nCID=12345678\r\nRW 1 ZERO\n\r\n";
  Descriptor d = MustParse(text);
  EXPECT_EQ(d.cid(), 0x12345678u);
  EXPECT_EQ(d.ToString(), text);
}

TEST(DescriptorTest, RoundTripsCrlfTextWithoutFinalNewline) {
  const std::string text = "version=1\r\nRW 1 ZERO\r\nddb.a = \"b\"";
  Descriptor d = MustParse(text);
  EXPECT_EQ(d.Get("ddb.a"), "b");
  EXPECT_EQ(d.ToString(), text);
}

TEST(DescriptorTest, AcceptsLoneCarriageReturnAtEndOfText) {
  const std::string text = "version=1\r\nRW 7 ZERO\r";
  Descriptor d = MustParse(text);
  ASSERT_EQ(d.extents().size(), 1u);
  EXPECT_EQ(d.extents()[0], Extent(kRW, 7, ExtentType::kZero));
  EXPECT_EQ(d.ToString(), text);
}

TEST(DescriptorTest, AcceptsSpacingAndQuotingVariants) {
  const std::string text =
      "version = 1\n"
      "CID = \"1a2b3c4d\"\n"
      "parentCID= ffffffff\n"
      "createType =\"monolithicFlat\"\n"
      "  encoding\t=\t\"UTF-8\"   \n"
      "parentFileNameHint=base.vmdk \t\n"
      "RW 1 ZERO\n"
      "ddb.adapterType=\"ide\"\n"
      "ddb.geometry.heads = 16\n";
  Descriptor d = MustParse(text);
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.cid(), 0x1a2b3c4du);
  EXPECT_EQ(d.parent_cid(), kNoParentCid);
  EXPECT_EQ(d.create_type(), "monolithicFlat");
  EXPECT_EQ(d.Get("encoding"), "UTF-8");
  EXPECT_EQ(d.parent_file_name_hint(), "base.vmdk");
  EXPECT_EQ(d.Get("ddb.adapterType"), "ide");
  EXPECT_EQ(d.Get("ddb.geometry.heads"), "16");
  EXPECT_EQ(d.ToString(), text);
}

TEST(DescriptorTest, KeysAreCaseInsensitive) {
  Descriptor d = MustParse(
      "VERSION=2\ncid=0000abcd\nPARENTcid=12345678\nCREATETYPE=\"vmfs\"\n"
      "ParentFileNameHint=\"p.vmdk\"\nRW 1 ZERO\nDDB.AdapterType = \"ide\"\n");
  EXPECT_EQ(d.version(), 2);
  EXPECT_EQ(d.cid(), 0xabcdu);
  EXPECT_EQ(d.parent_cid(), 0x12345678u);
  EXPECT_EQ(d.create_type(), "vmfs");
  EXPECT_EQ(d.parent_file_name_hint(), "p.vmdk");
  EXPECT_EQ(d.Get("ddb.adaptertype"), "ide");
  EXPECT_EQ(d.Get("Ddb.AdapterType"), "ide");
  EXPECT_EQ(d.Entries()[1].first, "cid");  // spelling kept as written
}

TEST(DescriptorTest, ParsesHexCidInEitherCase) {
  EXPECT_EQ(MustParse("CID=ABCDEF12\nRW 1 ZERO\n").cid(), 0xabcdef12u);
  EXPECT_EQ(MustParse("CID=abcdef12\nRW 1 ZERO\n").cid(), 0xabcdef12u);
}

TEST(DescriptorTest, AcceptsVersionsOtherThanOne) {
  EXPECT_EQ(MustParse("version=3\nRW 1 ZERO\n").version(), 3);
  EXPECT_EQ(MustParse("version=2\nRW 1 ZERO\n").version(), 2);
}

TEST(DescriptorTest, TrimsValuesAndStripsOnlyOnePairOfQuotes) {
  Descriptor d = MustParse(
      "RW 1 ZERO\n"
      "ddb.a = \"\"x\"\"\n"
      "ddb.b = \"  padded  \"  \n"
      "ddb.c = \"\n"
      "ddb.d =   \n"
      "ddb.e = \"\"\n"
      "ddb.f =  two words  \n");
  EXPECT_EQ(d.Get("ddb.a"), "\"x\"");
  EXPECT_EQ(d.Get("ddb.b"), "  padded  ");
  EXPECT_EQ(d.Get("ddb.c"), "\"");
  EXPECT_EQ(d.Get("ddb.d"), "");
  EXPECT_EQ(d.Get("ddb.e"), "");
  EXPECT_EQ(d.Get("ddb.f"), "two words");
}

TEST(DescriptorTest, AcceptsCommentsAndBlankLinesAnywhere) {
  const std::string text =
      "# leading comment\n"
      "\n"
      "   # indented comment\n"
      "version=1\n"
      " \t \n"
      "# key=\"not an entry\"\n"
      "CID=12345678\n"
      "RW 1 ZERO\n"
      "# between extents, with \"quotes\"\n"
      "\n"
      "RW 2 ZERO\n"
      "#RW 3 ZERO\n"
      "ddb.a = \"1\"\n"
      "# trailing comment";
  Descriptor d = MustParse(text);
  EXPECT_EQ(d.Entries(), (std::vector<std::pair<std::string, std::string>>{
                             {"version", "1"}, {"CID", "12345678"}, {"ddb.a", "1"}}));
  EXPECT_EQ(d.extents().size(), 2u);
  EXPECT_EQ(d.capacity_sectors(), 3u);
  EXPECT_EQ(d.ToString(), text);
}

TEST(DescriptorTest, KeepsUnknownKeys) {
  const std::string text =
      "version=1\nfutureKey=\"some value\"\nchangeTrackPath=\"disk-ctk.vmdk\"\nRW 1 ZERO\n"
      "ddb.sidecars = \"a,b\"\nddb.vendor.thing=42\n";
  Descriptor d = MustParse(text);
  EXPECT_EQ(d.Get("futureKey"), "some value");
  EXPECT_EQ(d.Get("changeTrackPath"), "disk-ctk.vmdk");
  EXPECT_EQ(d.Get("ddb.sidecars"), "a,b");
  EXPECT_EQ(d.Get("ddb.vendor.thing"), "42");
  EXPECT_EQ(d.Entries().size(), 5u);
  EXPECT_EQ(d.ToString(), text);
}

TEST(DescriptorTest, GetReturnsTheFirstOfDuplicateKeys) {
  Descriptor d = MustParse("CID=11111111\nRW 1 ZERO\nCID=22222222\n");
  EXPECT_EQ(d.cid(), 0x11111111u);
  EXPECT_EQ(d.Entries().size(), 2u);
}

TEST(DescriptorTest, TypedGettersGiveDefaultsForMissingKeys) {
  Descriptor d = MustParse("RW 1 ZERO\n");
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.cid(), std::nullopt);
  EXPECT_EQ(d.parent_cid(), kNoParentCid);
  EXPECT_EQ(d.create_type(), "");
  EXPECT_EQ(d.parent_file_name_hint(), std::nullopt);
  EXPECT_EQ(d.Get("ddb.adapterType"), std::nullopt);
  EXPECT_TRUE(d.Entries().empty());
}

TEST(DescriptorTest, TypedGettersTreatValuesBrokenBySetAsAbsent) {
  Descriptor d = MustParse(kEsxiVmfsThickSnapshot);
  d.Set("version", "one");
  d.Set("CID", "xyz");
  d.Set("parentCID", "123456789");
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.cid(), std::nullopt);
  EXPECT_EQ(d.parent_cid(), kNoParentCid);
}

// ---- Extent lines ------------------------------------------------------------------------

TEST(DescriptorTest, ParsesEveryAccessAndTypeInAnyCase) {
  const std::vector<std::pair<std::string, ExtentAccess>> accesses = {
      {"RW", kRW}, {"rdonly", ExtentAccess::kReadOnly}, {"NoAccess", ExtentAccess::kNoAccess}};
  const std::vector<std::pair<std::string, ExtentType>> types = {
      {"FLAT", ExtentType::kFlat},
      {"sparse", ExtentType::kSparse},
      {"Zero", ExtentType::kZero},
      {"vmfs", ExtentType::kVmfs},
      {"VmfsSparse", ExtentType::kVmfsSparse},
      {"VMFSRDM", ExtentType::kVmfsRdm},
      {"vmfsraw", ExtentType::kVmfsRaw},
      {"SESparse", ExtentType::kSeSparse}};
  for (const auto& [access_word, access] : accesses) {
    for (const auto& [type_word, type] : types) {
      std::string line = access_word + " 100 " + type_word + " \"f.vmdk\" 5\n";
      Descriptor d = MustParse(WithHead(line));
      ASSERT_EQ(d.extents().size(), 1u) << line;
      EXPECT_EQ(d.extents()[0], Extent(access, 100, type, "f.vmdk", 5)) << line;
    }
  }
}

TEST(DescriptorTest, AcceptsRunsOfBlanksBetweenExtentFields) {
  Descriptor d =
      MustParse(WithHead("  RW  \t 2048\t\tFLAT   \"a b.vmdk\"  \t 7  \n"
                         "\tRDONLY 1   ZERO   \n"));
  ASSERT_EQ(d.extents().size(), 2u);
  EXPECT_EQ(d.extents()[0], Extent(kRW, 2048, ExtentType::kFlat, "a b.vmdk", 7));
  EXPECT_EQ(d.extents()[1], Extent(ExtentAccess::kReadOnly, 1, ExtentType::kZero));
}

TEST(DescriptorTest, ParsesQuotedFileNamesWithSpacesAndAnyNonQuoteBytes) {
  const std::vector<std::string> names = {
      "My Disk  two-flat.vmdk",
      "\xd0\xb4\xd0\xb8\xd1\x81\xd0\xba.vmdk",  // UTF-8
      "\xe9t\xe9.vmdk",                         // windows-1252
      "C:\\VMs\\base\\base-000002.vmdk",
      "\\\\.\\PhysicalDrive0",
      "/vmfs/volumes/5a1b-2c3d/my vm/disk-flat.vmdk",
      "vsan://52e5c6a8-1b2c-4d3e",
      "a=b #1.vmdk",
      "tab\tinside.vmdk",
  };
  for (const std::string& name : names) {
    std::string text = WithHead("RW 100 FLAT \"" + name + "\" 0\n");
    Descriptor d = MustParse(text);
    ASSERT_EQ(d.extents().size(), 1u) << name;
    EXPECT_EQ(d.extents()[0].file_name, name);
    EXPECT_TRUE(d.Entries().size() == 1) << name;  // "a=b" is not an entry
    EXPECT_EQ(d.ToString(), text);
  }
}

TEST(DescriptorTest, ParsesZeroExtentWithAndWithoutFileName) {
  Descriptor d = MustParse(WithHead("RW 10 ZERO\nRW 20 ZERO \"\"\nRW 30 zero \"z.vmdk\" 4\n"));
  ASSERT_EQ(d.extents().size(), 3u);
  EXPECT_EQ(d.extents()[0], Extent(kRW, 10, ExtentType::kZero));
  EXPECT_EQ(d.extents()[1], Extent(kRW, 20, ExtentType::kZero));
  EXPECT_EQ(d.extents()[2], Extent(kRW, 30, ExtentType::kZero, "z.vmdk", 4));
}

TEST(DescriptorTest, ParsesSizesAndOffsetsBeyond32Bits) {
  Descriptor d =
      MustParse(WithHead("RW 1099511627776 FLAT \"big.vmdk\" 8589934592\n"
                         "RW 0 ZERO\n"));
  EXPECT_EQ(d.extents()[0],
            Extent(kRW, uint64_t{1} << 40, ExtentType::kFlat, "big.vmdk", uint64_t{1} << 33));
  EXPECT_EQ(d.capacity_sectors(), uint64_t{1} << 40);
  Descriptor max = MustParse(WithHead("RW 18446744073709551615 ZERO\n"));
  EXPECT_EQ(max.capacity_sectors(), std::numeric_limits<uint64_t>::max());
}

TEST(DescriptorTest, KeepsExtraFieldsAfterTheOffset) {
  const std::string text =
      WithHead("RW 63 FLAT \"\\\\.\\PhysicalDrive0\" 0 partitionUUID  \t{1234-5678}\n");
  Descriptor d = MustParse(text);
  EXPECT_EQ(d.extents()[0], Extent(kRW, 63, ExtentType::kFlat, "\\\\.\\PhysicalDrive0", 0,
                                   {"partitionUUID", "{1234-5678}"}));
  EXPECT_EQ(d.ToString(), text);
}

// ---- Errors ------------------------------------------------------------------------------

TEST(DescriptorTest, RejectsExtentLineWithoutQuotes) {
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT base-flat.vmdk 0\n")),
            "line 3: file name not in double quotes");
  EXPECT_EQ(ParseError(WithHead("RW 100 ZERO 0\n")), "line 3: file name not in double quotes");
}

TEST(DescriptorTest, RejectsUnterminatedFileNameQuote) {
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT \"base-flat.vmdk 0\n")),
            "line 3: unterminated file name quote");
}

TEST(DescriptorTest, RejectsMissingFileNameExceptForZero) {
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT\n")), "line 3: missing file name");
  EXPECT_EQ(ParseError(WithHead("RW 100 SPARSE   \n")), "line 3: missing file name");
  EXPECT_EQ(ParseError(WithHead("RW 100 VMFS\n")), "line 3: missing file name");
}

TEST(DescriptorTest, RejectsEmptyFileName) {
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT \"\" 0\n")), "line 3: empty file name");
}

TEST(DescriptorTest, RejectsTextRightAfterTheClosingQuote) {
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT \"a.vmdk\"0\n")), "line 3: no blank after file name");
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT \"a\"\"b\" 0\n")), "line 3: no blank after file name");
}

TEST(DescriptorTest, RejectsUnknownExtentAccess) {
  EXPECT_EQ(ParseError(WithHead("RX 100 FLAT \"a.vmdk\" 0\n")),
            "line 3: unknown extent access 'RX'");
  EXPECT_EQ(ParseError(WithHead("READWRITE 100 ZERO\n")),
            "line 3: unknown extent access 'READWRITE'");
}

TEST(DescriptorTest, RejectsUnknownExtentType) {
  EXPECT_EQ(ParseError(WithHead("RW 100 RAW \"a.vmdk\" 0\n")), "line 3: unknown extent type 'RAW'");
  EXPECT_EQ(ParseError(WithHead("RW 100 \"a.vmdk\" 0\n")),
            "line 3: unknown extent type '\"a.vmdk\"'");
}

TEST(DescriptorTest, RejectsExtentLineWithoutType) {
  EXPECT_EQ(ParseError(WithHead("RW 100\n")), "line 3: missing extent type");
}

TEST(DescriptorTest, RejectsNonDecimalExtentSize) {
  EXPECT_EQ(ParseError(WithHead("RW 10k FLAT \"a\" 0\n")), "line 3: invalid extent size '10k'");
  EXPECT_EQ(ParseError(WithHead("RW -1 ZERO\n")), "line 3: invalid extent size '-1'");
  EXPECT_EQ(ParseError(WithHead("RW +1 ZERO\n")), "line 3: invalid extent size '+1'");
  EXPECT_EQ(ParseError(WithHead("RW 0x10 ZERO\n")), "line 3: invalid extent size '0x10'");
  EXPECT_EQ(ParseError(WithHead("RW 1.5 ZERO\n")), "line 3: invalid extent size '1.5'");
  EXPECT_EQ(ParseError(WithHead("RW FLAT \"a\" 0\n")), "line 3: invalid extent size 'FLAT'");
  EXPECT_EQ(ParseError(WithHead("RW\n")), "line 3: invalid extent size ''");
}

TEST(DescriptorTest, RejectsExtentSizeBeyond64Bits) {
  EXPECT_EQ(ParseError(WithHead("RW 18446744073709551616 ZERO\n")),
            "line 3: extent size '18446744073709551616' does not fit in 64 bits");
}

TEST(DescriptorTest, RejectsBadExtentOffset) {
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT \"a\" x\n")), "line 3: invalid extent offset 'x'");
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT \"a\" -5\n")), "line 3: invalid extent offset '-5'");
  EXPECT_EQ(ParseError(WithHead("RW 100 FLAT \"a\" 99999999999999999999\n")),
            "line 3: extent offset '99999999999999999999' does not fit in 64 bits");
}

TEST(DescriptorTest, RejectsExtentsWhoseTotalSizeOverflows) {
  EXPECT_EQ(ParseError(WithHead("RW 9223372036854775808 ZERO\nRW 9223372036854775808 ZERO\n")),
            "line 4: total extent size does not fit in 64 bits");
}

TEST(DescriptorTest, RejectsLineThatIsNoneOfTheKnownKinds) {
  EXPECT_EQ(ParseError(WithHead("hello\n")), "line 3: not a comment, key=value or extent line");
  EXPECT_EQ(ParseError(WithHead("just some words\n")),
            "line 3: not a comment, key=value or extent line");
  EXPECT_EQ(ParseError(WithHead("\"quoted=thing\"\n")),
            "line 3: not a comment, key=value or extent line");
}

TEST(DescriptorTest, RejectsEntryWithInvalidKey) {
  EXPECT_EQ(ParseError(WithHead("=1\nRW 1 ZERO\n")), "line 3: invalid key ''");
  EXPECT_EQ(ParseError(WithHead("bad key = 1\nRW 1 ZERO\n")), "line 3: invalid key 'bad key'");
}

TEST(DescriptorTest, AcceptsCidWithoutLeadingZerosAsQemuWritesIt) {
  auto d = Descriptor::Parse(WithHead("CID=9d59622\nparentCID=0\nRW 1 ZERO\n"));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d.value().cid(), 0x09d59622u);
  EXPECT_EQ(d.value().parent_cid(), 0u);
}

TEST(DescriptorTest, RejectsCidThatIsNotOneToEightHexDigits) {
  const std::vector<std::string> bad = {"123456789", "zzzzzzzz", "",
                                        "0x123456", "-1234567",  "+1234567", "1234 678"};
  for (const std::string& value : bad) {
    EXPECT_EQ(ParseError(WithHead("CID=" + value + "\nRW 1 ZERO\n")),
              "line 3: CID '" + value + "' is not 1 to 8 hex digits");
    EXPECT_EQ(ParseError(WithHead("parentCID=\"" + value + "\"\nRW 1 ZERO\n")),
              "line 3: parentCID '" + value + "' is not 1 to 8 hex digits");
  }
}

TEST(DescriptorTest, RejectsNonNumericVersion) {
  for (const std::string value : {"one", "-1", "", "1.0", "1 2", "99999999999"}) {
    EXPECT_EQ(ParseError("version=" + value + "\nRW 1 ZERO\n"),
              "line 1: version '" + value + "' is not a number");
  }
}

TEST(DescriptorTest, RejectsDescriptorWithoutExtentLine) {
  EXPECT_EQ(ParseError(""), "no extent line");
  EXPECT_EQ(ParseError("# Disk DescriptorFile\nversion=1\nCID=12345678\n\n#DDB\n"),
            "no extent line");
}

TEST(DescriptorTest, RejectsNulByte) {
  using std::string_literals::operator""s;
  EXPECT_EQ(ParseError("version=1\nCID=123\0"
                       "45678\nRW 1 ZERO\n"s),
            "line 2: NUL byte");
  EXPECT_EQ(ParseError("RW 1 ZERO\n# comment\0"s), "line 2: NUL byte");
}

TEST(DescriptorTest, RejectsDescriptorOverTheSizeLimit) {
  std::string text = "RW 1 ZERO\n#";
  text.append(kMaxDescriptorBytes - text.size() - 1, 'x');
  text += '\n';
  ASSERT_EQ(text.size(), kMaxDescriptorBytes);
  EXPECT_EQ(MustParse(text).ToString(), text);
  text += '\n';
  EXPECT_EQ(ParseError(text), "descriptor is 1048577 bytes, over the limit of 1048576");
}

TEST(DescriptorTest, RejectsMoreThanMaxExtents) {
  std::string text;
  for (size_t i = 0; i < kMaxExtents; ++i) text += "RW 1 ZERO\n";
  EXPECT_EQ(MustParse(text).extents().size(), kMaxExtents);
  text += "RW 1 ZERO\n";
  EXPECT_EQ(ParseError(text), "line 65537: more than 65536 extents");
}

TEST(DescriptorTest, ErrorLineNumbersCountEveryLineOfCrlfText) {
  EXPECT_EQ(ParseError("# c\r\n\r\n  \r\nversion=1\r\nRW 1 FLAT a\r\n"),
            "line 5: file name not in double quotes");
}

// ---- Set and Remove ----------------------------------------------------------------------

TEST(DescriptorTest, SetReplacesOnlyTheValueOfAnExistingLine) {
  Descriptor d = MustParse(kVdiskmanagerMonolithicFlat);
  d.Set("CID", "1a2b3c4d");
  d.Set("ddb.adapterType", "lsilogic");
  d.Set("createType", "twoGbMaxExtentFlat");
  std::string expected = Replace(kVdiskmanagerMonolithicFlat, "CID=00000000\n", "CID=1a2b3c4d\n");
  expected = Replace(expected, "ddb.adapterType = \"buslogic\"", "ddb.adapterType = \"lsilogic\"");
  expected =
      Replace(expected, "createType=\"monolithicFlat\"", "createType=\"twoGbMaxExtentFlat\"");
  EXPECT_EQ(d.ToString(), expected);
  EXPECT_EQ(d.cid(), 0x1a2b3c4du);
}

TEST(DescriptorTest, SetKeepsTheUnspacedDdbStyleOfTheLine) {
  Descriptor d = MustParse(kVirtualBoxStream);
  d.Set("ddb.adapterType", "lsilogic");
  EXPECT_EQ(d.ToString(),
            Replace(kVirtualBoxStream, "ddb.adapterType=\"ide\"", "ddb.adapterType=\"lsilogic\""));
}

TEST(DescriptorTest, SetKeepsQuotingOfTheLine) {
  Descriptor d = MustParse("encoding=UTF-8\nparentCID=\"ffffffff\"\nRW 1 ZERO\nddb.x = 1\n");
  d.Set("encoding", "windows-1252");
  d.Set("parentCID", "12345678");
  d.Set("ddb.x", "2");
  EXPECT_EQ(d.ToString(), "encoding=windows-1252\nparentCID=\"12345678\"\nRW 1 ZERO\nddb.x = 2\n");
  EXPECT_EQ(d.parent_cid(), 0x12345678u);
}

TEST(DescriptorTest, SetDropsTrailingBlanksOfTheChangedLineOnly) {
  Descriptor d = MustParse(kOvftoolTtylinux);
  d.Set("CID", "12345678");
  EXPECT_EQ(d.ToString(), Replace(kOvftoolTtylinux, "CID=bb17cc39 \n", "CID=12345678\n"));
  EXPECT_NE(d.ToString().find("version=1 \n"), std::string::npos);
}

TEST(DescriptorTest, SetMatchesKeysCaseInsensitivelyAndKeepsTheirSpelling) {
  Descriptor d = MustParse("  cid = 11111111\nRW 1 ZERO\nDDB.UUID=\"x\"\n");
  d.Set("CID", "22222222");
  d.Set("ddb.uuid", "y");
  EXPECT_EQ(d.ToString(), "  cid = 22222222\nRW 1 ZERO\nDDB.UUID=\"y\"\n");
}

TEST(DescriptorTest, SetUpdatesEveryDuplicateOfTheKey) {
  Descriptor d = MustParse("CID=11111111\nRW 1 ZERO\nCID=22222222\n");
  d.Set("CID", "33333333");
  EXPECT_EQ(d.ToString(), "CID=33333333\nRW 1 ZERO\nCID=33333333\n");
}

TEST(DescriptorTest, SetAddsHeaderKeyAfterTheLastHeaderEntry) {
  Descriptor d = MustParse(kEsxiVmfsThick);
  d.Set("parentFileNameHint", "base.vmdk");
  d.Set("isNativeSnapshot", "no");
  EXPECT_EQ(d.ToString(), Replace(kEsxiVmfsThick, "createType=\"vmfs\"\n",
                                  "createType=\"vmfs\"\nparentFileNameHint=\"base.vmdk\"\n"
                                  "isNativeSnapshot=\"no\"\n"));
  EXPECT_EQ(d.parent_file_name_hint(), "base.vmdk");
}

TEST(DescriptorTest, SetAddsHeaderKeyBeforeExtentsEvenWithHeaderKeysAfterThem) {
  Descriptor d =
      MustParse("version=3\nRW 1 ZERO\n\n# Change Tracking File\nchangeTrackPath=\"a-ctk.vmdk\"\n");
  d.Set("CID", "12345678");
  EXPECT_EQ(d.ToString(),
            "version=3\nCID=12345678\nRW 1 ZERO\n\n# Change Tracking File\n"
            "changeTrackPath=\"a-ctk.vmdk\"\n");
}

TEST(DescriptorTest, SetAddsFirstHeaderKeyAfterTheDescriptorFileComment) {
  Descriptor d = MustParse("# Disk DescriptorFile\n# Extent description\nRW 1 ZERO\n");
  d.Set("version", "1");
  d.Set("CID", "12345678");
  EXPECT_EQ(d.ToString(),
            "# Disk DescriptorFile\nversion=1\nCID=12345678\n# Extent description\nRW 1 ZERO\n");
  Descriptor bare = MustParse("RW 1 ZERO\n");
  bare.Set("version", "1");
  EXPECT_EQ(bare.ToString(), "version=1\nRW 1 ZERO\n");
}

TEST(DescriptorTest, SetQuotesNewHeaderValuesUnlessNumbersOrCids) {
  Descriptor d = MustParse("RW 1 ZERO\n");
  d.Set("version", "1");
  d.Set("encoding", "UTF-8");
  d.Set("CID", "1a2b3c4d");
  d.Set("parentCID", "ffffffff");
  d.Set("isNativeSnapshot", "no");
  d.Set("createType", "monolithicFlat");
  d.Set("other", "1a2b3c4d");
  d.Set("empty", "");
  EXPECT_EQ(d.ToString(),
            "version=1\nencoding=\"UTF-8\"\nCID=1a2b3c4d\nparentCID=ffffffff\n"
            "isNativeSnapshot=\"no\"\ncreateType=\"monolithicFlat\"\nother=\"1a2b3c4d\"\n"
            "empty=\"\"\nRW 1 ZERO\n");
}

TEST(DescriptorTest, SetAddsDdbKeyAfterTheLastDdbEntry) {
  Descriptor d = MustParse("RW 1 ZERO\n#DDB\n\nddb.a = \"1\"\n# the end\n\n");
  d.Set("ddb.b", "2");
  d.Set("ddb.c", "");
  EXPECT_EQ(d.ToString(),
            "RW 1 ZERO\n#DDB\n\nddb.a = \"1\"\nddb.b = \"2\"\nddb.c = \"\"\n# the end\n\n");
  Descriptor esxi = MustParse(kEsxiVmfsThickSnapshot);
  esxi.Set("ddb.adapterType", "lsilogic");
  EXPECT_EQ(esxi.ToString(),
            std::string(kEsxiVmfsThickSnapshot) + "ddb.adapterType = \"lsilogic\"\n");
}

TEST(DescriptorTest, SetAddsDdbKeyAtTheEndWithoutDdbEntries) {
  Descriptor d = MustParse("version=1\nRW 1 ZERO\n\n# The Disk Data Base\n#DDB\n\n");
  d.Set("ddb.virtualHWVersion", "4");
  d.Set("ddb.adapterType", "ide");
  EXPECT_EQ(d.ToString(),
            "version=1\nRW 1 ZERO\n\n# The Disk Data Base\n#DDB\n\n"
            "ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n");
}

TEST(DescriptorTest, AddedLinesUseTheNewlineOfTheFirstLine) {
  Descriptor d = MustParse("version=1\r\nRW 1 ZERO\r\n#DDB\r\n");
  d.Set("CID", "12345678");
  d.Set("ddb.a", "b");
  d.SetExtents({Extent(kRW, 1, ExtentType::kZero), Extent(kRW, 2, ExtentType::kZero)});
  EXPECT_EQ(d.ToString(),
            "version=1\r\nCID=12345678\r\nRW 1 ZERO\r\nRW 2 ZERO\r\n#DDB\r\nddb.a = \"b\"\r\n");
}

TEST(DescriptorTest, TextWithoutFinalNewlineStaysWithoutOne) {
  Descriptor d = MustParse(kStreamConverter);
  d.Set("ddb.uuid", "60 00");
  EXPECT_EQ(d.ToString(), std::string(kStreamConverter) + "\nddb.uuid = \"60 00\"");
  Descriptor removed = MustParse(kStreamConverter);
  EXPECT_TRUE(removed.Remove("ddb.virtualHWVersion"));
  EXPECT_EQ(removed.ToString(),
            Replace(kStreamConverter, "d324d2a\"\nddb.virtualHWVersion = \"11\"", "d324d2a\""));
}

TEST(DescriptorTest, SetDropsCharactersThatWouldBreakTheLine) {
  Descriptor d = MustParse(kEsxiVmfsThick);
  d.Set("ddb.comment", "a\"b\nRW 1 FLAT \"x\" 0\r\n");
  d.Set("createType", std::string("vm\0fs", 5));
  EXPECT_EQ(d.Get("ddb.comment"), "abRW 1 FLAT x 0");
  EXPECT_EQ(d.create_type(), "vmfs");
  Descriptor reparsed = MustParse(d.ToString());
  EXPECT_EQ(reparsed.Get("ddb.comment"), "abRW 1 FLAT x 0");
  EXPECT_EQ(reparsed.extents().size(), 1u);
}

TEST(DescriptorTest, SetIgnoresKeysThatCannotBeWritten) {
  Descriptor d = MustParse(kEsxiVmfsThick);
  const std::vector<std::string> keys = {
      "", "a b", "a=b", "#x", "a\nRW", "a\"b", std::string("a\0b", 3)};
  for (const std::string& key : keys) d.Set(key, "1");
  EXPECT_EQ(d.ToString(), kEsxiVmfsThick);
}

TEST(DescriptorTest, RemoveDeletesEveryLineWithTheKey) {
  Descriptor d = MustParse(kVdiskmanagerMonolithicFlat);
  EXPECT_TRUE(d.Remove("ISNATIVESNAPSHOT"));
  EXPECT_FALSE(d.Remove("isNativeSnapshot"));
  EXPECT_FALSE(d.Remove("noSuchKey"));
  EXPECT_TRUE(d.Remove("ddb.deletable"));
  EXPECT_EQ(d.ToString(),
            Replace(Replace(kVdiskmanagerMonolithicFlat, "isNativeSnapshot=\"no\"\n", ""),
                    "ddb.deletable = \"true\"\n", ""));
  EXPECT_EQ(d.Get("isNativeSnapshot"), std::nullopt);

  Descriptor dup = MustParse("CID=11111111\nRW 1 ZERO\ncid=22222222\n");
  EXPECT_TRUE(dup.Remove("CID"));
  EXPECT_EQ(dup.ToString(), "RW 1 ZERO\n");
}

// ---- SetExtents and FormatExtentLine ----------------------------------------------------

TEST(DescriptorTest, SetExtentsRegeneratesOnlyChangedExtentLines) {
  Descriptor d = MustParse(kWorkstation16Extents);
  std::vector<ExtentLine> extents = d.extents();
  extents[2].size_sectors = 100;
  d.SetExtents(extents);
  EXPECT_EQ(d.ToString(), Replace(kWorkstation16Extents, "RW 8323072 SPARSE \"disk-s003.vmdk\"",
                                  "RW 100 SPARSE \"disk-s003.vmdk\""));
  EXPECT_EQ(d.extents(), extents);
  EXPECT_EQ(d.capacity_sectors(), 14u * 8323072 + 983040 + 100);
}

TEST(DescriptorTest, SetExtentsReplacesExtentLinesInPlace) {
  Descriptor d = MustParse(kWorkstation16Extents);
  ExtentLine first = d.extents()[0];
  d.SetExtents({first, Extent(kRW, 2048, ExtentType::kFlat, "new-flat.vmdk", 0)});
  std::string text = d.ToString();
  EXPECT_EQ(text.substr(0, text.find("\n\n# The Disk Data Base")),
            "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=216bc064\n"
            "parentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n"
            "# Extent description\nRW 8323072 SPARSE \"disk-s001.vmdk\"\n"
            "RW 2048 FLAT \"new-flat.vmdk\" 0");
  EXPECT_EQ(d.capacity_sectors(), 8323072u + 2048);
}

TEST(DescriptorTest, SetExtentsAddsFurtherExtentsAfterTheLastOldOne) {
  Descriptor d = MustParse(kEsxiVmfsThick);
  d.SetExtents({d.extents()[0], Extent(kRW, 100, ExtentType::kZero)});
  EXPECT_EQ(d.ToString(), Replace(kEsxiVmfsThick, "RW 4096 VMFS \"vmfs_thick-flat.vmdk\"\n",
                                  "RW 4096 VMFS \"vmfs_thick-flat.vmdk\"\nRW 100 ZERO\n"));
}

TEST(DescriptorTest, SetExtentsKeepsCommentsBetweenExtentLines) {
  Descriptor d = MustParse("RW 1 ZERO\n# middle\nRW 2 ZERO\n#DDB\n");
  d.SetExtents({Extent(kRW, 3, ExtentType::kZero)});
  EXPECT_EQ(d.ToString(), "RW 3 ZERO\n# middle\n#DDB\n");
  d.SetExtents({Extent(kRW, 3, ExtentType::kZero), Extent(kRW, 4, ExtentType::kZero),
                Extent(kRW, 5, ExtentType::kZero)});
  EXPECT_EQ(d.ToString(), "RW 3 ZERO\nRW 4 ZERO\nRW 5 ZERO\n# middle\n#DDB\n");
}

TEST(DescriptorTest, SetExtentsWithoutOldExtentsGoesRightAfterTheExtentComment) {
  Descriptor d = MustParse(kVdiskmanagerTwoGbMaxExtentFlat);
  d.SetExtents({});
  EXPECT_TRUE(d.extents().empty());
  EXPECT_EQ(d.capacity_sectors(), 0u);
  EXPECT_EQ(d.ToString(), Replace(kVdiskmanagerTwoGbMaxExtentFlat,
                                  "RW 20480 FLAT \"twoGbMaxExtentFlat-f001.vmdk\" 0\n", ""));
  EXPECT_EQ(ParseError(d.ToString()), "no extent line");
  d.SetExtents({Extent(kRW, 10, ExtentType::kFlat, "a-f001.vmdk", 0),
                Extent(kRW, 20, ExtentType::kFlat, "a-f002.vmdk", 0)});
  EXPECT_EQ(d.ToString(), Replace(kVdiskmanagerTwoGbMaxExtentFlat,
                                  "RW 20480 FLAT \"twoGbMaxExtentFlat-f001.vmdk\" 0\n",
                                  "RW 10 FLAT \"a-f001.vmdk\" 0\nRW 20 FLAT \"a-f002.vmdk\" 0\n"));
}

TEST(DescriptorTest, SetExtentsWithoutExtentSectionAddsOneAfterTheHeader) {
  Descriptor d = MustParse("# Disk DescriptorFile\nversion=1\nRW 1 ZERO\n\n#DDB\nddb.a = \"1\"\n");
  d.SetExtents({});
  EXPECT_EQ(d.ToString(), "# Disk DescriptorFile\nversion=1\n\n#DDB\nddb.a = \"1\"\n");
  d.SetExtents({Extent(kRW, 2048, ExtentType::kFlat, "x-flat.vmdk")});
  EXPECT_EQ(d.ToString(),
            "# Disk DescriptorFile\nversion=1\n# Extent description\n"
            "RW 2048 FLAT \"x-flat.vmdk\" 0\n\n#DDB\nddb.a = \"1\"\n");
}

TEST(DescriptorTest, SetExtentsStoresWhatItWrites) {
  Descriptor d = MustParse(kEsxiVmfsThick);
  d.SetExtents({Extent(kRW, 10, ExtentType::kFlat, "we\"ird\nname.vmdk"),
                Extent(kRW, 20, ExtentType::kVmfs, "v.vmdk")});
  const std::vector<ExtentLine> expected = {Extent(kRW, 10, ExtentType::kFlat, "weirdname.vmdk", 0),
                                            Extent(kRW, 20, ExtentType::kVmfs, "v.vmdk")};
  EXPECT_EQ(d.extents(), expected);
  EXPECT_EQ(MustParse(d.ToString()).extents(), expected);
}

TEST(DescriptorTest, ToStringNamesEveryAccessAndType) {
  EXPECT_EQ(ToString(ExtentAccess::kReadWrite), "RW");
  EXPECT_EQ(ToString(ExtentAccess::kReadOnly), "RDONLY");
  EXPECT_EQ(ToString(ExtentAccess::kNoAccess), "NOACCESS");
  EXPECT_EQ(ToString(ExtentType::kFlat), "FLAT");
  EXPECT_EQ(ToString(ExtentType::kSparse), "SPARSE");
  EXPECT_EQ(ToString(ExtentType::kZero), "ZERO");
  EXPECT_EQ(ToString(ExtentType::kVmfs), "VMFS");
  EXPECT_EQ(ToString(ExtentType::kVmfsSparse), "VMFSSPARSE");
  EXPECT_EQ(ToString(ExtentType::kVmfsRdm), "VMFSRDM");
  EXPECT_EQ(ToString(ExtentType::kVmfsRaw), "VMFSRAW");
  EXPECT_EQ(ToString(ExtentType::kSeSparse), "SESPARSE");
}

TEST(DescriptorTest, FormatExtentLineWritesVmwareStyle) {
  EXPECT_EQ(FormatExtentLine(Extent(kRW, 20480, ExtentType::kFlat, "base-flat.vmdk", 0)),
            "RW 20480 FLAT \"base-flat.vmdk\" 0");
  EXPECT_EQ(FormatExtentLine(Extent(kRW, 20480, ExtentType::kFlat, "base-flat.vmdk")),
            "RW 20480 FLAT \"base-flat.vmdk\" 0");
  EXPECT_EQ(FormatExtentLine(Extent(kRW, 20480, ExtentType::kZero)), "RW 20480 ZERO");
  EXPECT_EQ(FormatExtentLine(Extent(kRW, 4096, ExtentType::kVmfs, "a-flat.vmdk")),
            "RW 4096 VMFS \"a-flat.vmdk\"");
  EXPECT_EQ(FormatExtentLine(
                Extent(ExtentAccess::kReadOnly, 61440, ExtentType::kSparse, "my disk-s001.vmdk")),
            "RDONLY 61440 SPARSE \"my disk-s001.vmdk\"");
  EXPECT_EQ(FormatExtentLine(Extent(ExtentAccess::kNoAccess, uint64_t{1} << 40,
                                    ExtentType::kVmfsRdm, "/dev/sdb", 2048, {"uuid", "dev1"})),
            "NOACCESS 1099511627776 VMFSRDM \"/dev/sdb\" 2048 uuid dev1");
  EXPECT_EQ(
      FormatExtentLine(Extent(kRW, 8, ExtentType::kSeSparse, "s.vmdk", std::nullopt, {"extra"})),
      "RW 8 SESPARSE \"s.vmdk\" 0 extra");
  EXPECT_EQ(FormatExtentLine(Extent(kRW, 8, ExtentType::kFlat, "a", 0, {"b c", "\"", "d"})),
            "RW 8 FLAT \"a\" 0 bc d");
}

TEST(DescriptorTest, FormattedExtentLinesParseBackToTheSameExtent) {
  for (ExtentAccess access : {kRW, ExtentAccess::kReadOnly, ExtentAccess::kNoAccess}) {
    for (ExtentType type : {ExtentType::kFlat, ExtentType::kSparse, ExtentType::kZero,
                            ExtentType::kVmfs, ExtentType::kVmfsSparse, ExtentType::kVmfsRdm,
                            ExtentType::kVmfsRaw, ExtentType::kSeSparse}) {
      ExtentLine extent = type == ExtentType::kZero ? Extent(access, 123, type)
                                                    : Extent(access, 123, type, "d \xe9.vmdk", 77);
      Descriptor d = MustParse(WithHead(FormatExtentLine(extent) + "\n"));
      ASSERT_EQ(d.extents().size(), 1u);
      EXPECT_EQ(d.extents()[0], extent);
    }
  }
}

// ---- CreateEmpty -------------------------------------------------------------------------

TEST(DescriptorTest, CreateEmptyHasVmwareLayout) {
  Descriptor d = Descriptor::CreateEmpty();
  EXPECT_EQ(d.ToString(),
            "# Disk DescriptorFile\n"
            "version=1\n"
            "encoding=\"UTF-8\"\n"
            "CID=fffffffe\n"
            "parentCID=ffffffff\n"
            "createType=\"monolithicFlat\"\n"
            "\n"
            "# Extent description\n"
            "\n"
            "# The Disk Data Base\n"
            "#DDB\n"
            "\n");
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.cid(), 0xfffffffeu);
  EXPECT_EQ(d.parent_cid(), kNoParentCid);
  EXPECT_EQ(d.create_type(), "monolithicFlat");
  EXPECT_TRUE(d.extents().empty());
}

TEST(DescriptorTest, BuiltDescriptorParsesBackToTheSameValues) {
  Descriptor d = Descriptor::CreateEmpty();
  d.Set("CID", "1a2b3c4d");
  d.Set("parentCID", "0172e8a4");
  d.Set("createType", "twoGbMaxExtentSparse");
  d.Set("parentFileNameHint", "../base dir/base.vmdk");
  d.Set("ddb.virtualHWVersion", "14");
  d.Set("ddb.adapterType", "lsilogic");
  d.Set("ddb.longContentID", "00112233445566778899aabb1a2b3c4d");
  const std::vector<ExtentLine> extents = {
      Extent(kRW, 8323072, ExtentType::kSparse, "clone-s001.vmdk"),
      Extent(kRW, 983040, ExtentType::kSparse, "clone-s002.vmdk")};
  d.SetExtents(extents);
  const std::string text = d.ToString();
  EXPECT_EQ(text,
            "# Disk DescriptorFile\n"
            "version=1\n"
            "encoding=\"UTF-8\"\n"
            "CID=1a2b3c4d\n"
            "parentCID=0172e8a4\n"
            "createType=\"twoGbMaxExtentSparse\"\n"
            "parentFileNameHint=\"../base dir/base.vmdk\"\n"
            "\n"
            "# Extent description\n"
            "RW 8323072 SPARSE \"clone-s001.vmdk\"\n"
            "RW 983040 SPARSE \"clone-s002.vmdk\"\n"
            "\n"
            "# The Disk Data Base\n"
            "#DDB\n"
            "\n"
            "ddb.virtualHWVersion = \"14\"\n"
            "ddb.adapterType = \"lsilogic\"\n"
            "ddb.longContentID = \"00112233445566778899aabb1a2b3c4d\"\n");
  // qemu 7.2 parses an extent twice when a blank line precedes it.
  EXPECT_EQ(text.find("\n\nRW"), std::string::npos);

  Descriptor reparsed = MustParse(text);
  EXPECT_EQ(reparsed.version(), 1);
  EXPECT_EQ(reparsed.cid(), 0x1a2b3c4du);
  EXPECT_EQ(reparsed.parent_cid(), 0x0172e8a4u);
  EXPECT_EQ(reparsed.create_type(), "twoGbMaxExtentSparse");
  EXPECT_EQ(reparsed.parent_file_name_hint(), "../base dir/base.vmdk");
  EXPECT_EQ(reparsed.extents(), extents);
  EXPECT_EQ(reparsed.capacity_sectors(), 8323072u + 983040);
  EXPECT_EQ(reparsed.Entries(), d.Entries());
  EXPECT_EQ(reparsed.ToString(), text);
}

}  // namespace
}  // namespace vmdk
