// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonectl clone SRC DEST --full` (docs/full-clone.md): an independent copy of SRC that
// needs neither clonefs nor SRC. For each disk D of SRC, DEST/D.vmdk is a new
// monolithicSparse VMDK (vmdk/sparse_writer.h) holding the disk's current contents; for a
// VM source DEST also gets DEST.vmx and DEST.nvram, made as for a linked clone
// (clone_dir.h, clone_vmx.h). No .clonefs: DEST is an ordinary VM directory.
//
// SRC is a plain .vmdk (any subformat or chain), a .vmx, a VM directory with one .vmx, or
// a clonefs linked clone (its directory or its .vmx), copied as it is now. A linked clone
// is opened read-only through the engine and its VM lock is held for the whole copy, so
// it cannot be mounted meanwhile; one that is mounted is refused ("VM is running (mounted
// at M, pid P)"). Every source is opened and checked before anything is created; DEST is
// built in a temporary directory beside it and renamed into place, so a failure or an
// interruption leaves nothing.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/storage.h"

namespace tools {

struct FullCloneRequest {
  std::string source;        // as clone_source.h resolves it, or a linked clone
  std::string destination;   // a new directory (must not exist)
  std::string display_name;  // default: DEST's base name (VM sources only)
  // For a managed VM: copy this snapshot point instead of the current state. Snapshot
  // points never change, so this works while the VM is mounted and running.
  std::string snapshot;
  // Worker threads per disk (reading the source and writing grains in parallel).
  unsigned threads = 2;
  // Called from the calling thread about every 100 ms with the virtual bytes done so far
  // over all disks, and their total.
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
  // Set (e.g. from a signal handler) to stop early: the clone then fails with ECANCELED
  // and nothing is left.
  const std::atomic<bool>* cancel = nullptr;
};

struct FullCloneDisk {
  std::string name;    // D: written as DEST/D.vmdk
  std::string source;  // what was read: a VMDK's path, or "CLONE_DIR (disk D)"
  uint64_t capacity_bytes = 0;
  uint64_t data_bytes = 0;  // grain data written (all-zero grains and holes are not)
  uint64_t file_bytes = 0;  // size of D.vmdk
  double seconds = 0;       // time spent writing it
};

struct FullClone {
  std::string path;  // DEST, absolute
  std::vector<FullCloneDisk> disks;
  std::optional<std::string> vmx;  // "DEST.vmx" for a VM source
};

// Errors name the file and the cause, and leave nothing at DEST or beside it.
common::Result<FullClone> CreateFullClone(common::Storage& storage,
                                          const FullCloneRequest& request);

}  // namespace tools
