// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonectl delete VM [--snapshot NAME]` (docs/snapshots.md, "Deleting").
//
// A snapshot point is refused while a clone depends on it or on a later snapshot point
// whose chain holds its layers (listing each with its path); otherwise its layer is
// merged into each layer directly above it (layer_merge.h), which changes nothing any
// clone or the VM reads, and the snapshot record goes, in one commit of clone.json.
//
// A whole VM is refused while any clone depends on any of its snapshot points; otherwise
// its directory is renamed aside, its record in its parent VM's dependents is removed,
// and the directory is removed. Both need the VM stopped (its lock).

#include <functional>
#include <string>

#include "common/storage.h"

namespace tools {

struct DeleteOptions {
  // Drop the records of dependents that are gone (moved or deleted without clonectl)
  // instead of refusing because of them.
  bool forget_missing = false;
  // Called with (bytes copied so far, bytes to copy in all) while merging.
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
};

common::Status DeleteSnapshot(common::Storage& storage, const std::string& vm_path,
                              const std::string& name, const DeleteOptions& options = {});

common::Status DeleteVm(common::Storage& storage, const std::string& vm_path,
                        const DeleteOptions& options = {});

}  // namespace tools
