// SPDX-License-Identifier: Apache-2.0
#pragma once

// The `-o` options clonefs takes (comma-separated, any number of -o), as mount(8) and
// fstab pass them: the ones clonefs acts on, and the generic ones every mount helper is
// handed and which mean nothing to a FUSE file system (accepted and ignored).

#include <string>
#include <vector>

#include "common/status.h"

namespace clonefs {

struct MountOptions {
  bool read_only = false;
  bool allow_other = false;
  bool default_permissions = false;
};

// EINVAL "-o NAME: unknown option" for anything else.
common::Result<MountOptions> ParseMountOptions(const std::vector<std::string>& option_lists);

}  // namespace clonefs
