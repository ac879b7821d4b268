// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonectl snapshot VM NAME` (docs/snapshots.md): freezes each disk's top layer, writes
// its per-block checksums beside it, starts a new empty top layer over it, and records
// the .vmx and nvram as they are, all committed by one atomic replace of clone.json.
// The VM must not be mounted (its lock is taken: "VM is running (mounted at M, pid P)").

#include <cstdint>
#include <functional>
#include <string>

#include "common/storage.h"
#include "fs/engine/clone_config.h"
#include "tools/lib/managed_vm.h"

namespace tools {

// Snapshot names: 1-128 bytes, no '/', no control characters, not starting with '-'
// (it would read as an option) and not "." or "..". EINVAL saying why.
common::Status CheckSnapshotName(const std::string& name);

struct SnapshotOptions {
  // Called with (bytes checksummed so far, bytes to checksum in all).
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
};

// Takes snapshot point `name` of a locked VM. EEXIST if it has one of that name.
common::Result<engine::SnapshotPoint> TakeSnapshot(common::Storage& storage, LockedVm& vm,
                                                   const std::string& name,
                                                   const SnapshotOptions& options = {});

// Locks the VM at `vm_path`, then takes the snapshot.
common::Result<engine::SnapshotPoint> TakeSnapshot(common::Storage& storage,
                                                   const std::string& vm_path,
                                                   const std::string& name,
                                                   const SnapshotOptions& options = {});

}  // namespace tools
