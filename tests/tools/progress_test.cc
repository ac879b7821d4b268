// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/progress.h"

#include <gtest/gtest.h>

namespace tools {
namespace {

TEST(ProgressTest, HumanBytesUsesBinaryUnits) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(3 << 20), "3.0 MiB");
  EXPECT_EQ(HumanBytes(uint64_t{3} << 39), "1.5 TiB");
}

TEST(ProgressTest, FrameShowsBytesPercentRateAndTimeLeft) {
  std::string frame = Progress::Format("export", 1 << 30, uint64_t{4} << 30, 2.0);
  EXPECT_NE(frame.find("1.0 GiB"), std::string::npos) << frame;
  EXPECT_NE(frame.find("4.0 GiB"), std::string::npos) << frame;
  EXPECT_NE(frame.find("25.0%"), std::string::npos) << frame;
  EXPECT_NE(frame.find("512.0 MiB/s"), std::string::npos) << frame;
  EXPECT_NE(frame.find("0:06 left"), std::string::npos) << frame;
}

TEST(ProgressTest, TimeLeftIsUnknownBeforeAnyProgress) {
  std::string frame = Progress::Format("export", 0, 100, 0.0);
  EXPECT_NE(frame.find("--:-- left"), std::string::npos) << frame;
}

TEST(ProgressTest, LongOperationsShowHours) {
  // 8 GiB at 1 MiB/s with 1 MiB done: 8191 s left.
  std::string frame = Progress::Format("export", 1 << 20, uint64_t{8} << 30, 1.0);
  EXPECT_NE(frame.find("2:16:31 left"), std::string::npos) << frame;
}

}  // namespace
}  // namespace tools
