// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/snapshot.h"

#include <cerrno>
#include <filesystem>

#include "fs/engine/delta_layer.h"
#include "fs/engine/disk_chain.h"
#include "fs/engine/layer_checksums.h"
#include "fs/engine/packed_layer.h"
#include "tools/lib/clone_source.h"
#include "tools/lib/linked_clone.h"
#include "tools/lib/small_files.h"
#include "tools/lib/vmx_file.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using common::Error;
using common::Result;
using common::Status;

// The .vmx and nvram of a VM are a few KiB; anything far larger is not one.
constexpr uint64_t kMaxVmxBytes = 1 << 20;
constexpr uint64_t kMaxNvramBytes = 16 << 20;

// Keeps copies of the VM's .vmx and nvram (when it has them) in the snapshots directory.
Status RecordVmFiles(common::Storage& storage, const LockedVm& vm, const std::string& stem,
                     engine::SnapshotPoint& snapshot) {
  if (!vm.config.vmx) return Status::Ok();
  const std::string dir = vm.meta + "/" + engine::kSnapshotsDirName;
  if (!storage.Stat(dir)) {
    BOOST_OUTCOME_TRYV(storage.CreateDirectory(dir));
  }
  const std::string vmx_path = vm.dir + "/" + *vm.config.vmx;
  const std::string vmx_copy = std::string(engine::kSnapshotsDirName) + "/" + stem + ".vmx";
  BOOST_OUTCOME_TRYV(CopySmallFile(storage, vmx_path, vm.meta + "/" + vmx_copy, kMaxVmxBytes));
  snapshot.vmx_file = vmx_copy;

  // The nvram the .vmx names, if it exists (the hypervisor makes one on first boot).
  BOOST_OUTCOME_TRY(source, storage.Open(vm.meta + "/" + vmx_copy, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(size, source->Size());
  std::string text(size, '\0');
  BOOST_OUTCOME_TRYV(source->ReadExactAt(0, std::as_writable_bytes(std::span(text)), ".vmx"));
  BOOST_OUTCOME_TRY(vmx, VmxFile::Parse(text, vmx_path));
  if (auto nvram = vmx.Get("nvram"); nvram && !nvram->empty()) {
    const std::string nvram_path =
        fs::path(*nvram).is_absolute() ? *nvram : vm.dir + "/" + *nvram;
    if (storage.Stat(nvram_path)) {
      const std::string nvram_copy =
          std::string(engine::kSnapshotsDirName) + "/" + stem + ".nvram";
      BOOST_OUTCOME_TRYV(
          CopySmallFile(storage, nvram_path, vm.meta + "/" + nvram_copy, kMaxNvramBytes));
      snapshot.nvram_file = nvram_copy;
    }
  }
  return storage.SyncDirectory(dir);
}

// Freezes one disk's top layer: closed cleanly, then copied into a packed layer (its
// owned blocks side by side, packed_layer.h) and checksummed; then a new empty top over
// it. Returns the frozen layer's record; `next` gets the new top. The old top's files
// stay as they are until clone.json no longer names them. Progress counts each owned
// byte twice: once packed, once checksummed.
Result<engine::FrozenLayer> FreezeTop(common::Storage& storage, const LockedVm& vm,
                                      engine::CloneDisk& next, const SnapshotOptions& options,
                                      uint64_t& done, uint64_t total) {
  const engine::CloneDisk& disk = next;
  // Opening for writing and closing again recovers a layer a crash left unclean, so the
  // layer is frozen exactly as a mount would have served it.
  BOOST_OUTCOME_TRY(top, engine::OpenTopLayer(storage, vm.meta, disk, /*writable=*/true));
  BOOST_OUTCOME_TRYV(top->Close());

  engine::FrozenLayer frozen;
  frozen.layer_id = disk.layer_id;
  frozen.parent_id = disk.parent_layer_id;
  NameFrozenLayerFiles(frozen, LayerFileStem(disk.name, disk.layer_id));
  frozen.generation = top->header().generation;
  auto report_from = [&](uint64_t before) -> std::function<void(uint64_t)> {
    if (!options.progress) return {};
    return [&, before](uint64_t bytes) { options.progress(before + bytes, total); };
  };
  const engine::DeltaLayer* sources[] = {top.get()};
  BOOST_OUTCOME_TRY(packed, engine::WritePackedLayer(
                                storage,
                                {engine::LayerFilePath(vm.meta, frozen.delta_file),
                                 engine::LayerFilePath(vm.meta, frozen.map_file)},
                                top->header(), sources, {report_from(done)}));
  const uint64_t owned_bytes = top->owned_blocks() * engine::kBlockBytes;
  done += owned_bytes;
  BOOST_OUTCOME_TRYV(engine::WriteLayerChecksums(
      storage, *packed, engine::LayerFilePath(vm.meta, frozen.sums_file),
      {report_from(done)}));
  done += owned_bytes;

  next.frozen.push_back(frozen);
  BOOST_OUTCOME_TRYV(StartEmptyTop(storage, vm.meta, next, frozen.layer_id));
  return frozen;
}

// The frozen files never change again: make that visible to anyone listing them.
void MakeReadOnly(common::Storage& storage, const std::string& meta,
                  const engine::FrozenLayer& layer) {
  for (const std::string& file : {layer.delta_file, layer.map_file, layer.sums_file}) {
    const std::string path = engine::LayerFilePath(meta, file);
    if (auto info = storage.Stat(path)) (void)storage.SetMode(path, info.value().mode & 07555);
  }
}

}  // namespace

Status CheckSnapshotName(const std::string& name) {
  if (name.empty()) return Error(EINVAL, "a snapshot name cannot be empty");
  if (name.size() > 128) return Error(EINVAL, "snapshot name '{}...' is longer than 128 bytes",
                                      name.substr(0, 32));
  if (name == "." || name == "..") return Error(EINVAL, "'{}' is not a snapshot name", name);
  if (name.front() == '-') {
    return Error(EINVAL, "snapshot name '{}' starts with '-' (it would read as an option)", name);
  }
  for (unsigned char c : name) {
    if (c == '/' || c < 0x20 || c == 0x7f) {
      return Error(EINVAL, "snapshot name '{}' holds '/' or a control character", name);
    }
  }
  return Status::Ok();
}

Result<engine::SnapshotPoint> TakeSnapshot(common::Storage& storage, LockedVm& vm,
                                           const std::string& name,
                                           const SnapshotOptions& options) {
  BOOST_OUTCOME_TRYV(CheckSnapshotName(name));
  if (vm.config.FindSnapshot(name)) {
    return Error(EEXIST, "{}: snapshot point '{}' already exists", vm.dir, name);
  }
  engine::CloneConfig next = vm.config;
  engine::SnapshotPoint snapshot;
  snapshot.name = name;
  snapshot.created_utc = UtcNow();

  // Every chain is opened and checked first: a snapshot of a VM whose parent is missing
  // or modified is refused before anything is written.
  uint64_t total = 0;
  for (const engine::CloneDisk& disk : vm.config.disks) {
    BOOST_OUTCOME_TRY(cow, engine::OpenCloneDisk(storage, vm.meta, disk, /*writable=*/false));
    total += 2 * cow->delta().owned_blocks() * engine::kBlockBytes;
  }
  uint64_t done = 0;
  for (engine::CloneDisk& disk : next.disks) {
    BOOST_OUTCOME_TRY(frozen, FreezeTop(storage, vm, disk, options, done, total));
    snapshot.layer_ids.push_back(frozen.layer_id);
  }
  BOOST_OUTCOME_TRYV(RecordVmFiles(storage, vm, LayerFileStem("snapshot", snapshot.layer_ids[0]),
                                   snapshot));
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(vm.meta));
  next.snapshots.push_back(snapshot);
  BOOST_OUTCOME_TRYV(vm.Commit(storage, std::move(next)));
  for (const engine::CloneDisk& disk : vm.config.disks) {
    MakeReadOnly(storage, vm.meta, disk.frozen.back());
  }
  RemoveUnreferencedFiles(storage, vm.meta, vm.config);  // the tops that were packed
  return snapshot;
}

Result<engine::SnapshotPoint> TakeSnapshot(common::Storage& storage, const std::string& vm_path,
                                           const std::string& name,
                                           const SnapshotOptions& options) {
  BOOST_OUTCOME_TRYV(CheckSnapshotName(name));
  if (!IsManagedVm(storage, VmDirectory(storage, vm_path))) {
    BOOST_OUTCOME_TRY(adopted, AdoptVm(storage, vm_path, name));
    return adopted.snapshots.front();
  }
  BOOST_OUTCOME_TRY(vm, LockVm(storage, vm_path, "snapshot"));
  return TakeSnapshot(storage, vm, name, options);
}

}  // namespace tools
