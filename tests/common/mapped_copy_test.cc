// SPDX-License-Identifier: Apache-2.0
#include "common/mapped_copy.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "tests/support/test_support.h"

namespace common {
namespace {

// A file of two pages, mapped, then cut to one: the second page is gone from under the
// mapping, as when a mapped file is truncated by someone else.
class TruncatedMappingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    page_ = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const std::string path = dir_ / "f";
    testing_support::WriteFileBytes(path, std::vector<std::byte>(2 * page_, std::byte{7}));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    void* at = ::mmap(nullptr, 2 * page_, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_NE(at, MAP_FAILED);
    mapped_ = static_cast<std::byte*>(at);
    ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(page_)), 0);
  }
  void TearDown() override {
    if (mapped_ != nullptr) ::munmap(mapped_, 2 * page_);
  }

  testing_support::TempDir dir_;
  size_t page_ = 0;
  std::byte* mapped_ = nullptr;
};

TEST_F(TruncatedMappingTest, ACopyFromTheLostPageFailsAndTheProcessGoesOn) {
  std::vector<std::byte> got(page_);
  EXPECT_FALSE(CopyFromMapping(got.data(), mapped_ + page_, page_));
  EXPECT_FALSE(CopyFromMapping(got.data(), mapped_ + page_ / 2, page_));  // straddling
  // The page still in the file copies, and so does the lost one again (each fault is
  // caught afresh).
  ASSERT_TRUE(CopyFromMapping(got.data(), mapped_, page_));
  EXPECT_EQ(got, std::vector<std::byte>(page_, std::byte{7}));
  EXPECT_FALSE(CopyFromMapping(got.data(), mapped_ + page_, 16));
}

// Only guarded copies are rescued: any other access to the lost page still kills the
// process, as it did before the handler was installed.
TEST_F(TruncatedMappingTest, AnUnguardedFaultStillKillsTheProcess) {
  std::vector<std::byte> got(page_);
  ASSERT_FALSE(CopyFromMapping(got.data(), mapped_ + page_, 16));  // handler installed
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    volatile std::byte b = mapped_[page_];
    (void)b;
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status)) << "status " << status;  // SIGBUS (ASan: its abort)
}

}  // namespace
}  // namespace common
