// SPDX-License-Identifier: Apache-2.0
#pragma once

// A VM clonefs manages (a directory with `.clonefs/clone.json`), opened for a change by
// one clonectl command: its VM lock held (so no daemon serves it meanwhile: "VM is
// running (mounted at M, pid P)" otherwise), its configuration loaded, and what an
// interrupted earlier change left behind removed. Changes commit by replacing clone.json
// atomically; files they create before that are unreferenced until then, so a crash
// leaves the old state plus leftovers the next change removes (docs/snapshots.md).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/storage.h"
#include "fs/engine/clone_config.h"
#include "fs/engine/vm_lock.h"
#include "tools/lib/clone_source.h"

namespace tools {

// A VM path as users give it (the directory or its .vmx) as the VM's directory,
// absolute and normal.
std::string VmDirectory(common::Storage& storage, const std::string& vm_path);
// Whether `dir` holds a managed VM.
bool IsManagedVm(common::Storage& storage, const std::string& dir);
// VmDirectory, for commands that only read a VM: errors name `vm_path` as given when it
// is not a managed VM ("not managed by clonefs", "not a VM directory", or why it cannot
// be looked at).
common::Result<std::string> ManagedVmDirectory(common::Storage& storage,
                                               const std::string& vm_path);

struct LockedVm {
  std::string dir;   // absolute
  std::string meta;  // dir/.clonefs
  engine::CloneConfig config;
  std::unique_ptr<engine::VmLock> lock;

  // Replaces clone.json with `next` (the commit point of every change) and adopts it.
  common::Status Commit(common::Storage& storage, engine::CloneConfig next);
};

// Locks the VM at `vm_path` for `operation` (named in "VM is busy" messages to others).
// Errors name the VM: not managed, running, unreadable configuration.
common::Result<LockedVm> LockVm(common::Storage& storage, const std::string& vm_path,
                                const std::string& operation);

// Removes files in the metadata directory that clone.json does not reference: layer
// files (.delta, .packed, .map, .sums), snapshot copies of the .vmx and nvram, temporary files.
// Only called with the VM lock held; failures are ignored (they are retried next time).
void RemoveUnreferencedFiles(common::Storage& storage, const std::string& meta,
                             const engine::CloneConfig& config);

// The names new layer files of disk `disk_name` get: "<disk>-<16 hex digits of the id>".
std::string LayerFileStem(const std::string& disk_name, const std::string& layer_id);

// Names a frozen layer's files after `stem`: packed data "<stem>.packed", its map
// "<stem>.packed.map" and checksums "<stem>.sums".
void NameFrozenLayerFiles(engine::FrozenLayer& layer, const std::string& stem);

// Creates an empty top layer for `disk` over layer `parent_id` ("" for the base) in
// `meta`, closed cleanly, and makes `disk` name it as its top. The files are unreferenced
// until the caller commits clone.json.
common::Status StartEmptyTop(common::Storage& storage, const std::string& meta,
                             engine::CloneDisk& disk, const std::string& parent_id);

// The .vmx and nvram a snapshot point recorded, as a clone source (clone_source.h): the
// parsed .vmx (its disks listed as for a clone), the nvram copy. No vm for a VM without
// a .vmx (a clone of a plain VMDK).
struct SnapshotVm {
  std::optional<CloneSourceVm> vm;
  std::vector<CloneSourceDisk> disks;
};
common::Result<SnapshotVm> SnapshotVmFiles(common::Storage& storage, const std::string& vm_dir,
                                           const engine::SnapshotPoint& snapshot,
                                           const std::string& source_display);

// "2026-11-29T07:50:00Z".
std::string UtcNow();

}  // namespace tools
