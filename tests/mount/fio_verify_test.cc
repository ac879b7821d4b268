// SPDX-License-Identifier: Apache-2.0
// fio with data verification on a presented flat disk: random 4 KiB and sequential
// 1 MiB writes, O_DIRECT and buffered, verified in the same run and again, with
// --verify_only, after the clone is unmounted and mounted again.
#include <fmt/format.h>

#include "tests/mount/host_mounts.h"

namespace mount_test {
namespace {

using integration::WriteText;

// Four jobs side by side, each on its own 16 MiB of the disk. fio's random offsets
// repeat from run to run (randrepeat, the default), which is what lets a later
// --verify_only run check the blocks the first run wrote.
std::string JobFile(const std::string& flat) {
  return fmt::format(R"([global]
filename={}
ioengine=psync
verify=crc32c
verify_fatal=1
verify_state_save=0
size=16m

[random-4k-direct]
rw=randwrite
bs=4k
direct=1
offset=0

[random-4k-buffered]
rw=randwrite
bs=4k
direct=0
offset=16m

[sequential-1m-direct]
rw=write
bs=1m
direct=1
offset=32m

[sequential-1m-buffered]
rw=write
bs=1m
direct=0
offset=48m
)",
                     flat);
}

::testing::AssertionResult Fio(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"timeout", "120", "fio", "--output-format=terse"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunsOk(argv);
}

using FioVerifyTest = MountTest;

TEST_F(FioVerifyTest, WritesVerifyAndStillVerifyAfterRemount) {
  // A parent with data under every job, so that a block read from the wrong layer fails.
  const std::string parent = MakeParent("base.vmdk", "64M", {"write -P 0x11 0 64M"});
  const std::string clone = Clone(parent, "c1");
  const std::string job = Path("verify.fio");
  {
    MountedClone m(clone, Path("m1"));
    ASSERT_MOUNTED(m);
    WriteText(job, JobFile(m / "base-flat.vmdk"));
    ASSERT_TRUE(Fio({job}));
    EXPECT_TRUE(m.Unmount());
  }
  MountedClone again(clone, Path("m1"));
  ASSERT_MOUNTED(again);
  EXPECT_TRUE(Fio({"--verify_only", job}));
}

}  // namespace
}  // namespace mount_test
