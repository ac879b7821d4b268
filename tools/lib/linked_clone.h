// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonectl clone SRC DEST --linked` (docs/clone-layout.md): a new clone directory whose
// disks are empty delta layers over SRC's read-only chains. O(1) in the disk size. For a
// VM source the clone also gets DEST/<DEST's name>.vmx (clone_vmx.h) and a copy of the
// parent's nvram file.

#include <string>

#include "common/storage.h"
#include "fs/engine/clone_config.h"

namespace tools {

struct LinkedCloneRequest {
  std::string source;        // a .vmdk, a .vmx, or a VM directory (clone_source.h)
  std::string destination;   // a new directory (must not exist)
  std::string display_name;  // default: DEST's base name
  // For a managed VM: the snapshot point to clone. Empty: a new snapshot point of the
  // VM's current state is taken first (refused while the VM is running).
  std::string snapshot;
};

// Returns the clone's configuration as written. Errors name the file and the cause; on
// any failure nothing is left at DEST or beside it.
common::Result<engine::CloneConfig> CreateLinkedClone(common::Storage& storage,
                                                      const LinkedCloneRequest& request);

// The first snapshot point of an unmanaged VM directory (a .vmx and its VMDKs) adopts
// it (docs/snapshots.md, "Adopting a VM"): its disks' chains become read-only,
// fingerprinted base layers, `.clonefs/` is made inside the directory (built aside and
// renamed into place: the commit), each disk gets an empty top layer, and snapshot point
// `snapshot_name` records the base state. Mount the directory with clonefs to run it.
common::Result<engine::CloneConfig> AdoptVm(common::Storage& storage, const std::string& vm_path,
                                            const std::string& snapshot_name);

}  // namespace tools
