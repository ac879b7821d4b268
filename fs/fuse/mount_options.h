// SPDX-License-Identifier: Apache-2.0
#pragma once

// The `-o` options clonefs takes (comma-separated, any number of -o), as mount(8) and
// fstab pass them: the ones clonefs acts on, and the generic ones every mount helper is
// handed and which mean nothing to clonefs (accepted and ignored). docs/daemon.md,
// "Mounting with mount(8) and fstab", lists what mount(8) and mount.fuse3 pass.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clonefs {

struct MountOptions {
  bool read_only = false;  // ro; rw clears it (the last one wins, as in mount(8))
  bool no_exec = false;    // noexec; exec clears it. Passed to the kernel
  bool allow_other = false;
  bool default_permissions = false;
};

// EINVAL "-o NAME: unknown option" for anything else, and a message of its own for
// `remount` (mount -o remount on a clonefs mount).
common::Result<MountOptions> ParseMountOptions(const std::vector<std::string>& option_lists);

// Whether `mountpoint` is libfuse's "/dev/fd/N" form: a /dev/fuse descriptor that
// mount.fuse3 opened and mounted itself (its `drop_privileges` option). clonefs mounts by
// itself, at a path it records and checks, so it refuses that form.
bool IsFuseDescriptorMountpoint(std::string_view mountpoint);

}  // namespace clonefs
