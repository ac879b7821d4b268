// SPDX-License-Identifier: Apache-2.0
// Full clones of linked clones, against real mounts: what a guest wrote through clonefs
// is in the copy once the clone is unmounted, and a clone that a daemon holds is refused
// with the lock's "VM is running" line, creating nothing.
#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using integration::IsFullCloneOf;
using integration::IsOneLineError;

class FullCloneMountTest : public MountTest {
 protected:
  // What is in the test directory, for checking that a refusal created nothing.
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      names.push_back(entry.path().filename());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
};

TEST_F(FullCloneMountTest, CopiesWhatWasWrittenThroughTheMount) {
  const std::string parent = MakeParent(
      "base.vmdk", "96M", {"write -P 0x11 0 2M", "write -P 0x22 40M 1M", "write -P 0x33 95M 1M"});
  const std::string clone = Clone(parent, "c1");
  {
    MountedClone m(clone, Path("m"));
    ASSERT_MOUNTED(m);
    ASSERT_TRUE(QemuIoUncached(m / "base.vmdk", {
                                                    "write -P 0xa1 4k 4k",     // inside parent data
                                                    "write -P 0xa2 10M 300k",  // over a hole
                                                    "write -z 40M 64k",        // zeros over data
                                                    "write -P 0xa3 96255k 1k",  // the last KiB
                                                }));
    // A discarded range (as fstrim in a guest, or mkfs, does it).
    ASSERT_TRUE(RunsOk({"fallocate", "-p", "-o", std::to_string(95 << 20), "-l",
                        std::to_string(1 << 20), m / "base-flat.vmdk"}));
    EXPECT_TRUE(m.Unmount());
  }
  const std::string full = Path("full");
  CommandResult r = Clonectl({"clone", clone, full, "--full"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("full clone of " + clone + " (disk base"), std::string::npos) << r.out;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(full)) {
    names.push_back(entry.path().filename());
  }
  EXPECT_EQ(names, std::vector<std::string>{"base.vmdk"});

  // The copy equals the clone as its mount presents it (mounted again, read-only: the
  // full clone released the lock), and does not need the clone or its parent.
  {
    MountedClone m(clone, Path("m"), {"-o", "ro"});
    ASSERT_MOUNTED(m);
    EXPECT_TRUE(IsFullCloneOf(full + "/base.vmdk", m / "base.vmdk"));
    EXPECT_TRUE(m.Unmount());
  }
  // Discarded and zeroed ranges are holes in the copy, not stored zeros (but for the
  // last grain, which holds the last KiB).
  EXPECT_TRUE(RunsOk({"qemu-io", "-f", "vmdk", "-c", "read -P 0 95M 1023k", "-c",
                      "read -P 0xa3 96255k 1k", full + "/base.vmdk"}));
  CommandResult map = testing_support::Run({"qemu-img", "map", "--output=json", full + "/base.vmdk"});
  ASSERT_EQ(map.exit_code, 0) << map.err;
  nlohmann::json extents = integration::ParseJson(map.out);
  ASSERT_TRUE(extents.is_array()) << map.out;
  for (const auto& extent : extents) {
    const uint64_t start = extent["start"], length = extent["length"];
    if (!extent["data"].get<bool>()) continue;
    EXPECT_FALSE(start < (95u << 20) + (960u << 10) && start + length > (95u << 20))
        << "data mapped in the discarded range: " << extent;
    EXPECT_FALSE(start <= (40u << 20) && start + length >= (40u << 20) + (64u << 10))
        << "the zeroed grain is stored: " << extent;
  }
}

TEST_F(FullCloneMountTest, RefusesACloneMountedReadWriteAndCreatesNothing) {
  const std::string parent = MakeParent("base.vmdk", "16M", {"write -P 0x11 0 1M"});
  const std::string clone = Clone(parent, "c1");
  MountedClone m(clone, Path("m"));
  ASSERT_MOUNTED(m);
  const auto before = Entries();
  CommandResult r = Clonectl({"clone", clone, Path("full"), "--full"});
  EXPECT_TRUE(IsOneLineError(r, clone + ": VM is running (mounted at " + m.path() + ", pid " +
                                    std::to_string(m.pid()) + ")"));
  EXPECT_EQ(Entries(), before);
  // The daemon keeps serving: the refusal took nothing from it.
  EXPECT_TRUE(QemuIoUncached(m / "base.vmdk", {"write -P 0x44 0 4k", "read -P 0x44 0 4k"}));
  EXPECT_TRUE(m.Unmount());
}

// The VM lock is exclusive, read-only mounts included (docs/full-clone.md): a clone
// mounted with -o ro is refused as well.
TEST_F(FullCloneMountTest, RefusesACloneMountedReadOnlyToo) {
  const std::string parent = MakeParent("base.vmdk", "16M", {"write -P 0x11 0 1M"});
  const std::string clone = Clone(parent, "c1");
  MountedClone m(clone, Path("m"), {"-o", "ro"});
  ASSERT_MOUNTED(m);
  const auto before = Entries();
  CommandResult r = Clonectl({"clone", clone, Path("full"), "--full"});
  EXPECT_TRUE(IsOneLineError(r, "VM is running (mounted at " + m.path()));
  EXPECT_EQ(Entries(), before);
  EXPECT_TRUE(m.Unmount());
}

}  // namespace
}  // namespace mount_test
