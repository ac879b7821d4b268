// SPDX-License-Identifier: Apache-2.0
#include "common/memory_storage.h"

#include <gtest/gtest.h>

namespace common {
namespace {

// An empty std::string_view has a null data(); copying zero bytes from it must still be
// defined behaviour (UBSan: "null pointer passed as argument ... declared to never be
// null" in memcpy, fatal in the sanitizer build). Found by sparse_extent_fuzzer.
TEST(MemoryStorageTest, SetFileWithEmptyTextCreatesAnEmptyFile) {
  MemoryStorage storage;
  storage.SetFile("empty.vmdk", std::string_view());
  auto contents = storage.GetFile("empty.vmdk");
  ASSERT_TRUE(contents.has_value());
  EXPECT_TRUE(contents->empty());
  auto info = storage.Stat("empty.vmdk");
  ASSERT_TRUE(info);
  EXPECT_EQ(info.value().size_bytes, 0u);
}

}  // namespace
}  // namespace common
