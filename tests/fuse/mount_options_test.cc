// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/mount_options.h"

#include <gtest/gtest.h>

namespace clonefs {
namespace {

TEST(MountOptionsTest, ReadsTheOptionsClonefsActsOn) {
  auto options = ParseMountOptions({"ro,allow_other", "default_permissions,noexec"});
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_TRUE(options.value().read_only);
  EXPECT_TRUE(options.value().no_exec);
  EXPECT_TRUE(options.value().allow_other);
  EXPECT_TRUE(options.value().default_permissions);
}

TEST(MountOptionsTest, DefaultsToReadWriteAndExec) {
  auto options = ParseMountOptions({});
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_FALSE(options.value().read_only);
  EXPECT_FALSE(options.value().no_exec);
  EXPECT_FALSE(options.value().allow_other);
  EXPECT_FALSE(options.value().default_permissions);
}

TEST(MountOptionsTest, IgnoresTheGenericOptionsFstabPasses) {
  auto options =
      ParseMountOptions({"defaults,noauto,nofail,_netdev,x-systemd.automount,rw,,nosuid"});
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_FALSE(options.value().read_only);
}

// What mount(8) and mount.fuse3 (libfuse 3.14, util-linux 2.38) were seen to hand the
// daemon: `rw`/`ro` first, then the VFS options libmount kept, then mount.fuse3's
// `dev,suid` unless nodev/nosuid were asked for; `user` implies noexec,nosuid,nodev;
// `uhelper=` passes through both.
TEST(MountOptionsTest, AcceptsWhatMountFuse3Passes) {
  for (const char* list : {"rw,dev,suid", "ro,noatime,nodev,nosuid", "rw,noexec,nosuid,nodev",
                           "rw,sync,dirsync,dev,suid", "rw,noexec,nosuid,nodev,uhelper=udisks2",
                           "rw,allow_other,default_permissions,dev,suid"}) {
    SCOPED_TRACE(list);
    auto options = ParseMountOptions({list});
    EXPECT_TRUE(options) << options.error().message();
  }
  auto user_mount = ParseMountOptions({"ro,noexec,nosuid,nodev"});
  ASSERT_TRUE(user_mount) << user_mount.error().message();
  EXPECT_TRUE(user_mount.value().read_only);
  EXPECT_TRUE(user_mount.value().no_exec);
}

TEST(MountOptionsTest, TheLastOfRoAndRwWinsAsInMount) {
  auto read_write = ParseMountOptions({"ro", "rw"});
  ASSERT_TRUE(read_write) << read_write.error().message();
  EXPECT_FALSE(read_write.value().read_only);
  auto read_only = ParseMountOptions({"rw,ro"});
  ASSERT_TRUE(read_only) << read_only.error().message();
  EXPECT_TRUE(read_only.value().read_only);
}

TEST(MountOptionsTest, TheLastOfNoexecAndExecWins) {
  auto exec = ParseMountOptions({"noexec,exec"});
  ASSERT_TRUE(exec) << exec.error().message();
  EXPECT_FALSE(exec.value().no_exec);
  auto no_exec = ParseMountOptions({"exec", "noexec"});
  ASSERT_TRUE(no_exec) << no_exec.error().message();
  EXPECT_TRUE(no_exec.value().no_exec);
}

TEST(MountOptionsTest, RefusesUnknownOptionsNamingThem) {
  auto options = ParseMountOptions({"ro,cache=always"});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().code(), EINVAL);
  EXPECT_EQ(options.error().message(), "-o cache=always: unknown option");
}

// Options clonefs sets itself, and ones it would have to honour to accept them.
TEST(MountOptionsTest, RefusesFuseAndSecurityOptionsItDoesNotHonour) {
  for (const char* option : {"fsname=x", "subtype=y", "max_read=4096", "nosymfollow",
                             "setuid=nobody", "drop_privileges"}) {
    SCOPED_TRACE(option);
    auto options = ParseMountOptions({std::string("rw,") + option});
    ASSERT_FALSE(options);
    EXPECT_EQ(options.error().message(), std::string("-o ") + option + ": unknown option");
  }
}

TEST(MountOptionsTest, RefusesRemountSayingToUnmountFirst) {
  auto options = ParseMountOptions({"remount,ro"});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().code(), EINVAL);
  EXPECT_EQ(options.error().message(),
            "-o remount: a clonefs mount cannot be changed in place; unmount it and mount it "
            "again");
}

TEST(MountOptionsTest, RecognisesTheFuseDescriptorMountpointOfDropPrivileges) {
  EXPECT_TRUE(IsFuseDescriptorMountpoint("/dev/fd/3"));
  EXPECT_TRUE(IsFuseDescriptorMountpoint("/dev/fd/12"));
  EXPECT_FALSE(IsFuseDescriptorMountpoint("/dev/fd/"));
  EXPECT_FALSE(IsFuseDescriptorMountpoint("/dev/fd"));
  EXPECT_FALSE(IsFuseDescriptorMountpoint("/dev/fd/3x"));
  EXPECT_FALSE(IsFuseDescriptorMountpoint("/mnt/dev/fd/3"));
  EXPECT_FALSE(IsFuseDescriptorMountpoint("/mnt/c1"));
}

}  // namespace
}  // namespace clonefs
