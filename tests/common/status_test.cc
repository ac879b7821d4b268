// SPDX-License-Identifier: Apache-2.0
#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace common {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Error(EINVAL, "{} is odd", x);
  return x / 2;
}

Result<int> Quarter(int x) {
  BOOST_OUTCOME_TRY(half, Half(x));
  BOOST_OUTCOME_TRY(quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  BOOST_OUTCOME_TRY(half, Half(x));
  (void)half;
  return Status::Ok();
}

Status CheckQuarterable(int x) {
  BOOST_OUTCOME_TRYV(CheckEven(x));
  BOOST_OUTCOME_TRYV(CheckEven(x / 2));
  return Status::Ok();
}

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), 0);
}

TEST(StatusTest, FromErrnoNamesContextAndCause) {
  Status s = Status::FromErrno(ENOENT, "base.vmdk");
  EXPECT_EQ(s.code(), ENOENT);
  EXPECT_EQ(s.message(), "base.vmdk: No such file or directory");
}

TEST(StatusTest, WithContextPrependsAndKeepsCode) {
  Status s = Error(EIO, "grain table 3: past end of file").WithContext("base.vmdk");
  EXPECT_EQ(s.code(), EIO);
  EXPECT_EQ(s.message(), "base.vmdk: grain table 3: past end of file");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(StatusTest, TryPropagatesThroughResultAndStatus) {
  EXPECT_EQ(Quarter(8).value(), 2);
  EXPECT_EQ(Quarter(6).error().message(), "3 is odd");
  EXPECT_TRUE(CheckQuarterable(4).ok());
  Status s = CheckQuarterable(6);
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_EQ(s.message(), "3 is odd");
}

}  // namespace
}  // namespace common
