// SPDX-License-Identifier: Apache-2.0
// The presented D.vmdk of a linked clone, read by qemu-img, holds exactly what the parent
// holds, for parents in every subformat qemu-img writes, for a two-link chain, across the
// boundary between two extents, and for a VMware-made sample; and qemu-img info sees a
// monolithicFlat descriptor with one FLAT extent, D-flat.vmdk, of the parent's capacity.
#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using integration::ParseJson;

constexpr uint64_t kCapacity = 32 << 20;

// Data at several places of a 32 MiB disk: a whole grain, unaligned inside a grain,
// unaligned across a grain (and block) boundary, a run of grains, and the last sector.
const std::vector<std::string> kParentWrites = {
    "write -P 0x11 0 64k",  "write -P 0x22 70000 5000",   "write -P 0x33 4190000 9000",
    "write -P 0x44 16M 1M", "write -P 0x55 33553920 512",
};

class QemuCompareTest : public MountTest {
 protected:
  // A parent of `subformat` holding kParentWrites. qemu-io cannot overwrite a grain of a
  // streamOptimized image, so that one is converted from a raw image holding the writes.
  std::string MakeParentWithData(const std::string& name, const std::string& subformat) {
    if (subformat != "streamOptimized") {
      return MakeParent(name, std::to_string(kCapacity), kParentWrites, subformat);
    }
    const std::string raw = Path(name + ".raw");
    EXPECT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "raw", raw, std::to_string(kCapacity)}));
    std::vector<std::string> argv = {"qemu-io", "-f", "raw"};
    for (const auto& c : kParentWrites) argv.insert(argv.end(), {"-c", c});
    argv.push_back(raw);
    EXPECT_TRUE(RunsOk(argv));
    const std::string path = Path(name);
    EXPECT_TRUE(RunsOk({"qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
                        "subformat=streamOptimized", raw, path}));
    return path;
  }

  // qemu-img info on the presented descriptor: a valid monolithicFlat VMDK with no
  // parent, one FLAT extent that is the mount's D-flat.vmdk, and the parent's capacity.
  void ExpectPresentedAsMonolithicFlat(const MountedClone& m, const std::string& disk,
                                       uint64_t capacity) {
    CommandResult r =
        testing_support::Run({"qemu-img", "info", "--output=json", m / (disk + ".vmdk")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json info = ParseJson(r.out);
    ASSERT_TRUE(info.is_object()) << r.out;
    EXPECT_EQ(info["format"], "vmdk");
    EXPECT_EQ(info["virtual-size"], capacity);
    EXPECT_FALSE(info.contains("backing-filename")) << r.out;
    const nlohmann::json& data = info["format-specific"]["data"];
    EXPECT_EQ(data["create-type"], "monolithicFlat") << r.out;
    EXPECT_EQ(data["parent-cid"], 0xffffffffu) << r.out;
    ASSERT_EQ(data["extents"].size(), 1u) << r.out;
    EXPECT_EQ(data["extents"][0]["format"], "FLAT");
    EXPECT_EQ(data["extents"][0]["filename"], m / (disk + "-flat.vmdk"));
    EXPECT_EQ(data["extents"][0]["virtual-size"], capacity);
  }

  // Clones the parent, mounts the clone and checks what qemu-img sees through the mount.
  void ExpectCloneComparesEqual(const std::string& parent, const std::string& disk,
                                uint64_t capacity) {
    const std::string clone = Clone(parent, "c1");
    MountedClone m(clone, Path("m"));
    ASSERT_MOUNTED(m);
    EXPECT_TRUE(QemuImgCompare(m / (disk + ".vmdk"), parent, {"-f", "vmdk", "-F", "vmdk"}));
    ExpectPresentedAsMonolithicFlat(m, disk, capacity);
  }
};

TEST_F(QemuCompareTest, MonolithicSparseParentComparesEqual) {
  ExpectCloneComparesEqual(MakeParentWithData("base.vmdk", "monolithicSparse"), "base", kCapacity);
}

TEST_F(QemuCompareTest, MonolithicFlatParentComparesEqual) {
  ExpectCloneComparesEqual(MakeParentWithData("base.vmdk", "monolithicFlat"), "base", kCapacity);
}

TEST_F(QemuCompareTest, TwoGbMaxExtentSparseParentComparesEqual) {
  ExpectCloneComparesEqual(MakeParentWithData("base.vmdk", "twoGbMaxExtentSparse"), "base",
                           kCapacity);
}

TEST_F(QemuCompareTest, TwoGbMaxExtentFlatParentComparesEqual) {
  ExpectCloneComparesEqual(MakeParentWithData("base.vmdk", "twoGbMaxExtentFlat"), "base",
                           kCapacity);
}

TEST_F(QemuCompareTest, StreamOptimizedParentComparesEqual) {
  ExpectCloneComparesEqual(MakeParentWithData("base.vmdk", "streamOptimized"), "base", kCapacity);
}

TEST_F(QemuCompareTest, TwoLinkChainComparesEqualToItsTopAndIsPresentedFlattened) {
  const std::string base = MakeParentWithData("base.vmdk", "monolithicSparse");
  const std::string top = Path("top.vmdk");
  ASSERT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", "-b", base, "-F", "vmdk", top}));
  // Over the base's data and beside it: partly covering a grain the base wrote, a whole
  // new grain, and one unaligned run inside the base's 16 MiB extent of data.
  ASSERT_TRUE(QemuIo(
      top, {"write -P 0x66 32k 64k", "write -P 0x77 8M 64k", "write -P 0x88 16800000 3000"}));
  ExpectCloneComparesEqual(top, "top", kCapacity);
}

// The 2 GiB extents of a twoGbMaxExtent* disk: data written across the boundary between
// the first and the second extent reads back whole. Flat extents are sparse host files,
// and qemu-img compare skips their holes, so this costs no more than the 32 MiB cases.
TEST_F(QemuCompareTest, TwoGbMaxExtentFlatParentComparesEqualAcrossTheExtentBoundary) {
  const uint64_t capacity = 2100ull << 20;
  const std::string parent =
      MakeParent("base.vmdk", std::to_string(capacity),
                 {"write -P 0x11 0 64k", "write -P 0x33 2047M 2M",
                  "write -P 0x44 " + std::to_string(capacity - 512) + " 512"},
                 "twoGbMaxExtentFlat");
  ASSERT_TRUE(std::filesystem::exists(Path("base-f002.vmdk")));
  ExpectCloneComparesEqual(parent, "base", capacity);
}

// As above with sparse extents. qemu-img compare would read the whole 2 GiB through the
// mount (a sparse parent's unallocated grains are not "zero" to it), so the mount is
// compared, holes skipped, with qemu-img's own raw rendering of the parent.
TEST_F(QemuCompareTest, TwoGbMaxExtentSparseParentReadsAsQemuReadsItAcrossTheExtentBoundary) {
  const uint64_t capacity = 2100ull << 20;
  const std::string parent =
      MakeParent("base.vmdk", std::to_string(capacity),
                 {"write -P 0x11 0 64k", "write -P 0x33 2047M 2M",
                  "write -P 0x44 " + std::to_string(capacity - 512) + " 512"},
                 "twoGbMaxExtentSparse");
  ASSERT_TRUE(std::filesystem::exists(Path("base-s002.vmdk")));
  const std::string reference = Path("base.raw");
  ASSERT_TRUE(RunsOk({"qemu-img", "convert", "-f", "vmdk", "-O", "raw", parent, reference}));
  const std::string clone = Clone(parent, "c1");
  MountedClone m(clone, Path("m"));
  ASSERT_MOUNTED(m);
  EXPECT_EQ(testing_support::FirstDifference(m / "base-flat.vmdk", reference), "");
  EXPECT_TRUE(QemuIoUncached(m / "base.vmdk", {"read -P 0x33 2047M 2M"}));
  ExpectPresentedAsMonolithicFlat(m, "base", capacity);
}

// A disk VMware's vmware-vdiskmanager made (tests/support: the shared samples, see their
// SOURCES.md): the mount compares equal to it, and its raw contents have the SHA-256 that
// SOURCES.md records for `qemu-img convert -O raw` of the sample.
TEST_F(QemuCompareTest, VmwareMadeMonolithicSparseSampleComparesEqual) {
  testing_support::CopySamplesDecompressed(Path("samples"));
  const std::string sample = Path("samples/vmware-vdiskmanager/monolithicSparse.vmdk");
  ExpectCloneComparesEqual(sample, "monolithicSparse", 10 << 20);
  MountedClone m(Path("c1"), Path("m"));
  ASSERT_MOUNTED(m);
  EXPECT_EQ(testing_support::Sha256OfFile(m / "monolithicSparse-flat.vmdk"),
            "a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727");
}

TEST_F(QemuCompareTest, VmwareMadeTwoGbMaxExtentSparseSampleComparesEqual) {
  testing_support::CopySamplesDecompressed(Path("samples"));
  const std::string sample = Path("samples/vmware-vdiskmanager/twoGbMaxExtentSparse.vmdk");
  ExpectCloneComparesEqual(sample, "twoGbMaxExtentSparse", 10 << 20);
  MountedClone m(Path("c1"), Path("m"));
  ASSERT_MOUNTED(m);
  EXPECT_EQ(testing_support::Sha256OfFile(m / "twoGbMaxExtentSparse-flat.vmdk"),
            "a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727");
}

}  // namespace
}  // namespace mount_test
