// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/revert.h"

#include <cerrno>

#include "fs/engine/delta_layer.h"
#include "fs/engine/disk_chain.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/small_files.h"
#include "tools/lib/vmx_file.h"
#include "vmdk/flat_descriptor.h"

namespace tools {
namespace {

using common::Error;
using common::Result;
using common::Status;

constexpr uint64_t kMaxVmFileBytes = 16 << 20;

// Stages a snapshot's copy of a VM file beside its live name, for a rename after commit.
Status Stage(common::Storage& storage, const LockedVm& vm, const std::string& copy,
             const std::string& live_name, engine::CloneConfig& next) {
  const std::string staged = "." + live_name + ".clonefs-revert";
  (void)storage.Remove(vm.dir + "/" + staged);  // a leftover of an interrupted revert
  BOOST_OUTCOME_TRYV(CopySmallFile(storage, vm.meta + "/" + copy, vm.dir + "/" + staged,
                                   kMaxVmFileBytes));
  next.pending_renames.emplace_back(staged, live_name);
  return Status::Ok();
}

// The nvram file name the snapshot's .vmx gives, relative to the VM directory ("" if none
// or not inside it).
Result<std::string> NvramName(common::Storage& storage, const std::string& vmx_copy) {
  BOOST_OUTCOME_TRY(file, storage.Open(vmx_copy, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(size, file->Size());
  std::string text(size, '\0');
  BOOST_OUTCOME_TRYV(file->ReadExactAt(0, std::as_writable_bytes(std::span(text)), ".vmx"));
  BOOST_OUTCOME_TRY(vmx, VmxFile::Parse(text, vmx_copy));
  std::string name = vmx.Get("nvram").value_or("");
  if (name.find('/') != std::string::npos) return std::string();
  return name;
}

}  // namespace

std::string SnapshotNames(const engine::CloneConfig& config) {
  std::string names;
  for (const engine::SnapshotPoint& s : config.snapshots) {
    names += (names.empty() ? "" : ", ") + s.name;
  }
  return names.empty() ? "none" : names;
}

Result<engine::SnapshotPoint> RevertToSnapshot(common::Storage& storage,
                                               const std::string& vm_path,
                                               const std::string& name) {
  BOOST_OUTCOME_TRY(vm, LockVm(storage, vm_path, "revert"));
  const engine::SnapshotPoint* found = vm.config.FindSnapshot(name);
  if (!found) {
    return Error(ENOENT, "{}: no snapshot point '{}' (snapshot points: {})", vm_path, name,
                 SnapshotNames(vm.config));
  }
  const engine::SnapshotPoint snapshot = *found;
  engine::CloneConfig next = vm.config;
  for (size_t i = 0; i < next.disks.size(); ++i) {
    engine::CloneDisk& disk = next.disks[i];
    const std::string& layer_id = snapshot.layer_ids[i];
    // The chain the disk goes back to is checked before anything is written.
    BOOST_OUTCOME_TRY(lower, engine::OpenLowerChain(storage, vm.meta, disk, layer_id));
    BOOST_OUTCOME_TRYV(StartEmptyTop(storage, vm.meta, disk, layer_id));
    // The disk's contents changed under its descriptor: a new CID tells hypervisors so.
    const auto& base = static_cast<const engine::VmdkLowerLayers&>(lower->base());
    BOOST_OUTCOME_TRYV(engine::WriteFileAtomically(
        storage, vm.meta + "/" + disk.name + ".vmdk",
        vmdk::MakeFlatDescriptor(base.disk(), disk.name + "-flat.vmdk", vmdk::NewCid())));
  }
  if (snapshot.vmx_file && vm.config.vmx) {
    BOOST_OUTCOME_TRYV(Stage(storage, vm, *snapshot.vmx_file, *vm.config.vmx, next));
    BOOST_OUTCOME_TRY(nvram, NvramName(storage, vm.meta + "/" + *snapshot.vmx_file));
    if (snapshot.nvram_file && !nvram.empty()) {
      BOOST_OUTCOME_TRYV(Stage(storage, vm, *snapshot.nvram_file, nvram, next));
    }
  }
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(vm.meta));
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(vm.dir));
  BOOST_OUTCOME_TRYV(vm.Commit(storage, std::move(next)));
  // Committed: put the VM files back, then drop the old top layers.
  BOOST_OUTCOME_TRYV(engine::FinishPendingRenames(storage, vm.dir, vm.config));
  RemoveUnreferencedFiles(storage, vm.meta, vm.config);
  return snapshot;
}

}  // namespace tools
