// SPDX-License-Identifier: Apache-2.0
// Inputs found by tests/fuzz/descriptor_fuzzer, kept as unit tests.

#include <gtest/gtest.h>

#include <cerrno>

#include "vmdk/descriptor.h"

namespace vmdk {
namespace {

// A quoted file name made only of CR bytes parses (as "\r"), but SetExtents normalises
// it to "" and writes `RW 1 SPARSE ""`, which Parse refuses ("line 2: empty file name"):
// the writer must never produce text the parser rejects. (Refusing such a name in Parse
// would fix it as well.) Found by descriptor_fuzzer as an edited descriptor that did not
// parse again.
TEST(DescriptorFuzzRegressionTest, SetExtentsNeverWritesAFileNameParseRefuses) {
  const std::string text = "RW 1 SPARSE \"a\"\nRW 1 SPARSE \"\r\"\n";
  auto parsed = Descriptor::Parse(text);
  if (!parsed) {
    EXPECT_EQ(parsed.error().code(), EINVAL) << parsed.error().message();
    return;
  }
  Descriptor edited = parsed.value();
  edited.SetExtents(parsed.value().extents());
  auto again = Descriptor::Parse(edited.ToString());
  ASSERT_TRUE(again) << again.error().message() << "\n" << edited.ToString();
  EXPECT_EQ(again.value().extents(), edited.extents());
}

}  // namespace
}  // namespace vmdk
