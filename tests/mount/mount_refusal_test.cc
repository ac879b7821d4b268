// SPDX-License-Identifier: Apache-2.0
// Mounts clonefs refuses (docs/daemon.md, "Start-up checks"): each exits non-zero with
// one stderr line `clonefs: FILE: cause` naming the file and the cause, and leaves no
// mount behind. Where the cause can be undone, undoing it makes the mount work: a refusal
// changes nothing.
#include <signal.h>
#include <sys/stat.h>

#include "tests/mount/mount_fixture.h"

namespace mount_test {
namespace {

using testing_support::Sha256OfFile;

class MountRefusalTest : public MountTest {
 protected:
  void SetUp() override {
    parent_ = MakeParent("base.vmdk", "16M", {"write -P 0x11 0 1M"});
    clone_ = Clone(parent_, "c1");
  }

  // Mounting `vm` at a fresh mountpoint is refused with a message containing each of
  // `needles`, and nothing is mounted there.
  void ExpectRefused(const std::string& vm, const std::vector<std::string>& needles,
                     const std::vector<std::string>& extra = {}) {
    const std::string mountpoint = Path("m");
    MountedClone m(vm, mountpoint, extra);
    EXPECT_FALSE(m.ok()) << "mounted " << vm << " although it should be refused";
    for (const std::string& needle : needles) {
      EXPECT_TRUE(IsOneLineRefusal(m.result(), needle));
    }
    EXPECT_FALSE(IsMountpoint(mountpoint));
  }

  void ExpectMountable(const std::string& vm) {
    MountedClone m(vm, Path("m"));
    ASSERT_MOUNTED(m);
    EXPECT_TRUE(QemuImgCompare(m / "base.vmdk", parent_));
  }

  std::string parent_;
  std::string clone_;
};

TEST_F(MountRefusalTest, ParentWrittenAfterCloningIsRefusedNamingTheParent) {
  // Same size, new data: only the CID, header hash and mtime tell.
  ASSERT_EQ(chmod(parent_.c_str(), 0644), 0);
  ASSERT_TRUE(QemuIo(parent_, {"write -P 0x12 0 4k"}));
  ExpectRefused(clone_, {parent_ + ": ", "modified"});
}

TEST_F(MountRefusalTest, ParentGrownAfterCloningIsRefusedNamingTheParent) {
  ASSERT_EQ(chmod(parent_.c_str(), 0644), 0);
  ASSERT_TRUE(QemuIo(parent_, {"write -P 0x12 8M 64k"}));
  ExpectRefused(clone_, {parent_ + ": ", "modified"});
}

TEST_F(MountRefusalTest, MissingParentIsRefusedNamingItAndMountsOnceItIsBack) {
  std::filesystem::rename(parent_, Path("elsewhere.vmdk"));
  ExpectRefused(clone_, {parent_ + ": ", "missing"});
  std::filesystem::rename(Path("elsewhere.vmdk"), parent_);
  ExpectMountable(clone_);
}

TEST_F(MountRefusalTest, CorruptCloneHeaderIsRefusedNamingTheMapFileWhichIsLeftAsItWas) {
  const std::string map = clone_ + "/.clonefs/base.map";
  const std::vector<std::byte> good = testing_support::ReadFileBytes(map);
  ASSERT_GE(good.size(), 4096u);
  // The magic, a geometry field, and a byte of the zero tail only the checksum covers.
  for (size_t offset : {size_t{0}, size_t{16}, size_t{2000}}) {
    SCOPED_TRACE("byte " + std::to_string(offset) + " flipped");
    std::vector<std::byte> bad = good;
    bad[offset] ^= std::byte{0xff};
    testing_support::WriteFileBytes(map, bad);
    ExpectRefused(clone_, {map + ": ", "header"});
    EXPECT_TRUE(testing_support::ReadFileBytes(map) == bad) << "the refused mount changed " << map;
  }
  testing_support::WriteFileBytes(map, good);
  ExpectMountable(clone_);
}

TEST_F(MountRefusalTest, MissingMountpointIsRefusedNamingIt) {
  const std::string mountpoint = Path("no-such-dir");
  CommandResult r = Clonefs({clone_, mountpoint});
  if (r.exit_code == 0) testing_support::Run({"fusermount3", "-u", "-z", mountpoint});
  EXPECT_TRUE(IsOneLineRefusal(r, mountpoint + ": No such file or directory"));
  EXPECT_FALSE(std::filesystem::exists(mountpoint));
}

TEST_F(MountRefusalTest, MissingVmPathIsRefusedNamingIt) {
  ExpectRefused(Path("no-such-clone"), {Path("no-such-clone") + ": ", "No such file"});
}

TEST_F(MountRefusalTest, DirectoryThatIsNotACloneIsRefusedNamingIt) {
  std::filesystem::create_directories(Path("plain-dir"));
  ExpectRefused(Path("plain-dir"), {Path("plain-dir") + ": ", "not a clone"});
}

TEST_F(MountRefusalTest, UnknownMountOptionIsRefusedNamingIt) {
  ExpectRefused(clone_, {"-o bogus: unknown option"}, {"-o", "ro,bogus"});
  ExpectMountable(clone_);
}

// mountinfo escapes a space as \040: the check must undo that to see the mount.
TEST_F(MountRefusalTest, MountpointWithASpaceHoldingAClonefsMountIsRefused) {
  const std::string other = Clone(parent_, "c2");
  MountedClone first(clone_, Path("my mount"));
  ASSERT_MOUNTED(first);
  CommandResult r = Clonefs({other, Path("my mount")});
  EXPECT_TRUE(IsOneLineRefusal(r, Path("my mount") + ": a clonefs mount is already there"));
  EXPECT_EQ(MountsAt(Path("my mount")), 1);
}

TEST_F(MountRefusalTest, MountpointHoldingAClonefsMountIsRefusedAndThatMountKeepsServing) {
  const std::string other = Clone(parent_, "c2");
  MountedClone first(clone_, Path("m"));
  ASSERT_MOUNTED(first);
  CommandResult r = Clonefs({other, Path("m")});
  EXPECT_TRUE(IsOneLineRefusal(r, Path("m") + ": a clonefs mount is already there"));
  EXPECT_EQ(MountsAt(Path("m")), 1);
  EXPECT_TRUE(QemuImgCompare(first / "base.vmdk", parent_));
  EXPECT_TRUE(first.Unmount());
  // The refused clone was not left locked.
  MountedClone second(other, Path("m"));
  EXPECT_TRUE(second.ok()) << second.result().err;
}

// The kernel answers stat of a mount's root from its attribute cache for a second after
// the daemon died, as it does for any FUSE mount; the mountpoint is stat'ed right before
// the daemon is killed, as `ls` or a previous mount attempt would have.
TEST_F(MountRefusalTest, DeadFuseMountAtTheMountpointIsRefusedSayingHowToRemoveIt) {
  const std::string other = Clone(parent_, "c2");
  MountedClone dead(clone_, Path("m"));
  ASSERT_MOUNTED(dead);
  struct stat st {};
  ASSERT_EQ(stat(Path("m").c_str(), &st), 0);
  ASSERT_EQ(kill(static_cast<pid_t>(dead.pid()), SIGKILL), 0);
  ASSERT_TRUE(WaitForExit(dead.pid()));

  CommandResult r = Clonefs({other, Path("m")});
  if (r.exit_code == 0) testing_support::Run({"fusermount3", "-u", Path("m")});
  EXPECT_TRUE(IsOneLineRefusal(r, Path("m") + ": a dead FUSE mount"));
  EXPECT_TRUE(IsOneLineRefusal(r, "fusermount3 -u " + Path("m")));
  EXPECT_EQ(MountsAt(Path("m")), 1);
  // `dead` removes the dead mount on destruction; nothing else is left to unmount.
}

}  // namespace
}  // namespace mount_test
