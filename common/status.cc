// SPDX-License-Identifier: Apache-2.0
#include "common/status.h"

#include <cstring>

namespace common {

Status Status::FromErrno(int err, std::string_view context) {
  return Status(err, fmt::format("{}: {}", context, std::strerror(err)));
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, fmt::format("{}: {}", context, message_));
}

}  // namespace common
