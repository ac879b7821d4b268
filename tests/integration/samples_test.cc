// SPDX-License-Identifier: Apache-2.0
// clonectl against the real-world samples of ../shared/testdata/vmdk-samples: every sample
// with known contents exports to exactly the raw image SOURCES.md records, and every
// sample whose data is missing or broken fails cleanly, naming the file.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "tests/integration/integration_util.h"
#include "tests/support/test_support.h"

namespace integration {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// The 10 MiB disk vmware-vdiskmanager wrote in four subformats (52 of 160 grains used).
constexpr char kVdiskmanagerSha256[] =
    "a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727";
// SHA-256 of 8 GiB of zeros (`head -c 8G /dev/zero | sha256sum`).
constexpr char kEightGiBOfZerosSha256[] =
    "ebfb4ef19ae410f190327b5ebd312711263bc7579970e87d9c1e2d84e06b3c25";

struct KnownSample {
  const char* name;  // test name suffix
  const char* path;  // relative to the samples directory
  const char* create_type;
  uint64_t capacity_bytes;
  const char* raw_sha256;  // "Raw SHA-256" column of SOURCES.md
};

const KnownSample kKnownSamples[] = {
    {"VdiskmanagerMonolithicSparse", "vmware-vdiskmanager/monolithicSparse.vmdk",
     "monolithicSparse", 10 * kMiB, kVdiskmanagerSha256},
    {"VdiskmanagerStreamOptimized", "vmware-vdiskmanager/streamOptimized.vmdk", "streamOptimized",
     10 * kMiB, kVdiskmanagerSha256},
    {"VdiskmanagerTwoGbMaxExtentSparse", "vmware-vdiskmanager/twoGbMaxExtentSparse.vmdk",
     "twoGbMaxExtentSparse", 10 * kMiB, kVdiskmanagerSha256},
    {"EsxiVmfsThick", "esxi/vmfs_thick.vmdk", "vmfs", 2 * kMiB,
     "8d43c795d24bce01b49f92744f934c1072210dcac170bb1c83a5aa56df46ab7d"},
    {"OvftoolBlank8GiB", "ovftool/cot-2014-blank-8GiB.vmdk", "streamOptimized", 8 * kGiB,
     kEightGiBOfZerosSha256},
    {"StreamConverterWithMarkers",
     "third-party/vmdk-stream-converter/streamOptimizedWithMarkers.vmdk", "streamOptimized",
     1 * kMiB, "92c0f8b4280377437056f57c51ef51a5f8aeb1462ac630ef0633febcbfc3db4e"},
    {"VirtualBoxUbuntu8GiB", "third-party/virtualbox/ubuntu.2.0-disk1.vmdk", "streamOptimized",
     8 * kGiB, kEightGiBOfZerosSha256},
    {"OldQemuPlaso", "third-party/qemu-old/plaso-image.vmdk", "monolithicSparse", 200 * 512,
     "854c3db1c4a07a241e2ed9fbd8892adf2adc662c7862a75deed26f3483f414c9"},
};

struct BrokenSample {
  const char* name;
  const char* path;
  const char* culprit;  // the missing or broken file the error must name
};

const BrokenSample kBrokenSamples[] = {
    {"MonolithicFlatWithoutExtent", "vmware-vdiskmanager/monolithicFlat.vmdk",
     "monolithicFlat-flat.vmdk"},
    {"TwoGbMaxExtentFlatWithoutExtent", "vmware-vdiskmanager/twoGbMaxExtentFlat.vmdk",
     "twoGbMaxExtentFlat-f001.vmdk"},
    {"EsxiSnapshotWithoutCowdDelta", "esxi/vmfs_thick-000001.vmdk", "vmfs_thick-000001-delta.vmdk"},
    {"Player9DescriptorWithoutExtent", "descriptors/vmware-player9-monolithicSparse-descriptor.txt",
     "test1.vmdk"},
    {"Workstation16ExtentDescriptorWithoutExtents",
     "descriptors/workstation-hw13-twoGbMaxExtentSparse-16extents.vmdk", "disk-s001.vmdk"},
    {"VmfsDescriptorWithOffsetWithoutExtent",
     "descriptors/vdiskmanager-vmfs-extent-with-offset.vmdk", "4-flat.vmdk"},
    {"OvftoolTruncatedStream", "ovftool/ttylinux-pc_i486-16.1-disk1.truncated.vmdk",
     "ttylinux-pc_i486-16.1-disk1.truncated.vmdk"},
};

void PrintTo(const KnownSample& sample, std::ostream* os) { *os << sample.path; }

void PrintTo(const BrokenSample& sample, std::ostream* os) { *os << sample.path; }

// One decompressed copy of the samples for the whole suite; each test writes its output
// into its own TempDir.
class SamplesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    samples_ = std::make_unique<TempDir>();
    testing_support::CopySamplesDecompressed(samples_->path());
  }
  static void TearDownTestSuite() { samples_.reset(); }

  static std::string Sample(const std::string& relative) { return *samples_ / relative; }

  TempDir out_dir_;

 private:
  static std::unique_ptr<TempDir> samples_;
};

std::unique_ptr<TempDir> SamplesTest::samples_;

class KnownSampleTest : public SamplesTest, public ::testing::WithParamInterface<KnownSample> {};
class BrokenSampleTest : public SamplesTest, public ::testing::WithParamInterface<BrokenSample> {};

TEST_P(KnownSampleTest, ExportsTheRawImageRecordedInSources) {
  const KnownSample& sample = GetParam();
  const std::string out = out_dir_ / "disk.raw";

  CommandResult r = Clonectl({"export", Sample(sample.path), out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(fs::file_size(out), sample.capacity_bytes);

  if (std::string(sample.raw_sha256) == kEightGiBOfZerosSha256) {
    // Hashing 8 GiB takes longer than the whole suite may; comparing with an all-hole
    // file of the same size proves the same thing, reading only the data clonectl wrote.
    const std::string zeros = out_dir_ / "zeros.raw";
    { std::ofstream create(zeros); }
    fs::resize_file(zeros, sample.capacity_bytes);
    EXPECT_EQ(testing_support::FirstDifference(out, zeros), "");
    // An all-zero disk must come out as a hole, not 8 GiB of written zeros.
    EXPECT_LE(testing_support::AllocatedBytes(out), 1 * kMiB);
  } else {
    EXPECT_EQ(testing_support::Sha256OfFile(out), sample.raw_sha256);
  }
}

TEST_P(KnownSampleTest, InspectReportsCreateTypeAndCapacity) {
  const KnownSample& sample = GetParam();
  nlohmann::json json = InspectJson(Sample(sample.path));
  ASSERT_TRUE(json.is_object());
  EXPECT_EQ(json["create_type"], sample.create_type);
  EXPECT_EQ(json["capacity_bytes"], sample.capacity_bytes);
  ASSERT_TRUE(json["chain"].is_array());
  EXPECT_EQ(json["chain"].size(), 1u) << "a sample without parent is a chain of one";
  EXPECT_LE(json["allocated_bytes"].get<uint64_t>(), sample.capacity_bytes);
}

TEST_P(BrokenSampleTest, ExportFailsNamingTheFileAndLeavesNoOutput) {
  const BrokenSample& sample = GetParam();
  const std::string out = out_dir_ / "disk.raw";

  CommandResult r = Clonectl({"export", Sample(sample.path), out});
  EXPECT_TRUE(IsOneLineError(r, sample.culprit));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::is_empty(out_dir_.path())) << "export left a temporary file behind";
}

TEST_P(BrokenSampleTest, InspectFailsNamingTheFile) {
  const BrokenSample& sample = GetParam();
  EXPECT_TRUE(IsOneLineError(Clonectl({"inspect", Sample(sample.path)}), sample.culprit));
  EXPECT_TRUE(IsOneLineError(Clonectl({"inspect", Sample(sample.path), "--json"}), sample.culprit));
}

TEST_F(SamplesTest, ExportOfTwoGbMaxExtentSparseFailsWhenItsExtentIsMissing) {
  TempDir dir;
  fs::copy_file(Sample("vmware-vdiskmanager/twoGbMaxExtentSparse.vmdk"),
                dir / "twoGbMaxExtentSparse.vmdk");
  CommandResult r = Clonectl({"export", dir / "twoGbMaxExtentSparse.vmdk", out_dir_ / "disk.raw"});
  EXPECT_TRUE(IsOneLineError(r, "twoGbMaxExtentSparse-s001.vmdk"));
  EXPECT_TRUE(fs::is_empty(out_dir_.path()));
}

INSTANTIATE_TEST_SUITE_P(Samples, KnownSampleTest, ::testing::ValuesIn(kKnownSamples),
                         [](const auto& info) { return std::string(info.param.name); });
INSTANTIATE_TEST_SUITE_P(Samples, BrokenSampleTest, ::testing::ValuesIn(kBrokenSamples),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace integration
