// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/mount_options.h"

#include <gtest/gtest.h>

namespace clonefs {
namespace {

TEST(MountOptionsTest, ReadsTheOptionsClonefsActsOn) {
  auto options = ParseMountOptions({"ro,allow_other", "default_permissions"});
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_TRUE(options.value().read_only);
  EXPECT_TRUE(options.value().allow_other);
  EXPECT_TRUE(options.value().default_permissions);
}

TEST(MountOptionsTest, IgnoresTheGenericOptionsFstabPasses) {
  auto options = ParseMountOptions({"defaults,noauto,nofail,_netdev,x-systemd.automount,rw,,nosuid"});
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_FALSE(options.value().read_only);
}

TEST(MountOptionsTest, RefusesUnknownOptionsNamingThem) {
  auto options = ParseMountOptions({"ro,cache=always"});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().code(), EINVAL);
  EXPECT_EQ(options.error().message(), "-o cache=always: unknown option");
}

}  // namespace
}  // namespace clonefs
