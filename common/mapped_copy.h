// SPDX-License-Identifier: Apache-2.0
#pragma once

// Copies out of a file mapping that survive the file failing under them. Reading a mapped
// page the kernel cannot provide (the file was truncated, or reading it back from the
// device failed) raises SIGBUS, which would kill the process where a read(2) would have
// returned an error for one request.

#include <cstddef>

namespace common {

// Copies `length` bytes from `src`, inside a mapping, to `dst`: false, with `dst` partly
// written, when reading `src` raised SIGBUS. The first call installs a SIGBUS handler for
// the process; a SIGBUS raised anywhere else goes to the handler that was there before
// (or kills the process, as it would have).
bool CopyFromMapping(std::byte* dst, const std::byte* src, size_t length);

}  // namespace common
