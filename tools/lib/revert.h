// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonectl revert VM NAME` (docs/snapshots.md, "Reverting"): discards every change made
// since snapshot point NAME. Each disk gets a new empty top layer over NAME's layer; the
// old top layers are removed; the .vmx and nvram NAME recorded are put back. Snapshot
// points taken after NAME stay (their layers are a branch of the tree). The VM must not
// be mounted.

#include <string>

#include "common/storage.h"
#include "fs/engine/clone_config.h"

namespace tools {

common::Result<engine::SnapshotPoint> RevertToSnapshot(common::Storage& storage,
                                                       const std::string& vm_path,
                                                       const std::string& name);

// "s1, s2" or "none": the VM's snapshot point names, for messages.
std::string SnapshotNames(const engine::CloneConfig& config);

}  // namespace tools
