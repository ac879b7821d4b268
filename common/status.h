// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one error type of clonefs. A Status is a positive errno `code` (0 = OK) plus a
// message that already names the file, field and offset involved; callers moving it up a
// layer add context in front ("open extent 'base-s001.vmdk': read grain directory: ...")
// instead of replacing it. Functions that produce a value return Result<T>.

#include <boost/outcome.hpp>
#include <fmt/format.h>

#include <string>
#include <string_view>
#include <utility>

namespace common {

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(int code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  // `context: strerror(err)`, code err. Call right after the failing syscall with a saved
  // errno.
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == 0; }
  int code() const { return code_; }
  const std::string& message() const { return message_; }

  // A copy whose message is "context: <message>".
  Status WithContext(std::string_view context) const;

  // Lets BOOST_OUTCOME_TRY/TRYV propagate a Status from and into Status-returning
  // functions exactly as it does for Result<T>.
  bool has_value() const { return ok(); }
  boost::outcome_v2::failure_type<Status> as_failure() const;
  Status(boost::outcome_v2::failure_type<Status> failure);  // NOLINT: implicit on purpose

 private:
  int code_ = 0;
  std::string message_;
};

inline boost::outcome_v2::failure_type<Status> Status::as_failure() const {
  return boost::outcome_v2::failure(*this);
}
inline Status::Status(boost::outcome_v2::failure_type<Status> failure)
    : Status(std::move(failure.error())) {}

template <class T>
using Result = boost::outcome_v2::result<T, Status, boost::outcome_v2::policy::terminate>;

// Builds a failed Status with a formatted message: Error(EIO, "{}: bad magic", path).
template <class... Args>
Status Error(int code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace common
