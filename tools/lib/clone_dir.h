// SPDX-License-Identifier: Apache-2.0
#pragma once

// What every new clone directory goes through, linked or full (docs/clone-layout.md,
// "Creating a clone"): DEST is checked, the clone is built in a temporary directory
// beside it and renamed into place without replacing anything; and for a VM source, the
// clone's .vmx and its copy of the nvram.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/storage.h"
#include "tools/lib/clone_source.h"
#include "tools/lib/small_files.h"

namespace tools {

struct CloneDestination {
  std::string given;   // DEST as the user named it, for messages
  std::string path;    // absolute and normal
  std::string parent;  // the directory it goes in
  std::string name;    // its base name: a VM clone's configuration is NAME.vmx
  std::string temp;    // where it is built: PARENT/.NAME.clonefs-tmp-PID
};

// Resolves DEST. EEXIST "DEST: already exists" when anything is there; the parent must
// be a directory (ENOTDIR, or its stat error).
common::Result<CloneDestination> CheckDestination(common::Storage& storage,
                                                  const std::string& destination);

// Creates dest.temp (removing a leftover of an earlier crash of this same pid), calls
// build(dest.temp), then renames it to dest.path, refusing to replace anything, and syncs
// the parent directory. `build` must leave everything in the directory durable (files
// and the directory itself synced). On any failure the temporary directory is removed:
// no DEST, no half-made clone.
common::Status BuildAndPublish(common::Storage& storage, const CloneDestination& dest,
                               const std::function<common::Status(const std::string& dir)>& build);

// For a VM source: DIR/NAME.vmx, the parent's .vmx edited as clone_vmx.h says (display
// name, each of `disks` pointing at "D.vmdk" beside it, nvram "NAME.nvram"), with the
// parent's permission bits plus owner read-write, and DIR/NAME.nvram, a copy of the
// parent's nvram when there is one. Returns the .vmx's file name.
common::Result<std::string> WriteCloneVmConfig(common::Storage& storage, const std::string& dir,
                                               const std::string& name, const CloneSourceVm& vm,
                                               const std::string& display_name,
                                               const std::vector<CloneSourceDisk>& disks);

}  // namespace tools
