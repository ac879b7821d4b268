// SPDX-License-Identifier: Apache-2.0
#include "common/mount_table.h"

#include <gtest/gtest.h>

namespace common {
namespace {

TEST(MountTableTest, UndoesMountinfoEscapes) {
  EXPECT_EQ(UnescapeMountField("/mnt/my\\040clone"), "/mnt/my clone");
  EXPECT_EQ(UnescapeMountField("/a\\134b\\011c"), "/a\\b\tc");
  EXPECT_EQ(UnescapeMountField("/plain"), "/plain");
  EXPECT_EQ(UnescapeMountField("/cut\\04"), "/cut\\04");  // not a whole escape
}

TEST(MountTableTest, KnowsTheRootAndNotAPlainDirectory) {
  EXPECT_TRUE(MountedFileSystemType("/").has_value());
  EXPECT_TRUE(MountedFileSystemType("/proc") == "proc");
  EXPECT_FALSE(MountedFileSystemType("/proc/self").has_value());
}

}  // namespace
}  // namespace common
