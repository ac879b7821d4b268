// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/delete.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include <fmt/format.h>

#include "fs/engine/disk_chain.h"
#include "fs/engine/layer_checksums.h"
#include "fs/engine/layer_merge.h"
#include "tools/lib/dependents.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/revert.h"
#include "tools/lib/small_files.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using common::Error;
using common::Result;
using common::Status;

// Whether layer `id` is `ancestor` or lies above it in the disk's tree.
bool IsAtOrAbove(const engine::CloneDisk& disk, std::string id, const std::string& ancestor) {
  for (size_t steps = 0; steps <= disk.frozen.size() + 1; ++steps) {
    if (id == ancestor) return true;
    const engine::FrozenLayer* layer = disk.FindLayer(id);
    if (layer == nullptr) return false;
    id = layer->parent_id;
  }
  return false;
}

// The dependents that keep `blocked(snapshot name)` from going, after dropping records of
// missing ones if asked to. "": none.
Result<std::string> BlockingDependents(common::Storage& storage, const LockedVm& vm,
                                       const DeleteOptions& options,
                                       const std::function<bool(const std::string&)>& blocked) {
  BOOST_OUTCOME_TRY(dependents, ListDependents(storage, vm.meta, vm.config.vm_id));
  std::string list;
  for (const Dependent& d : dependents) {
    if (!d.problem.empty() && options.forget_missing) {
      BOOST_OUTCOME_TRYV(RemoveDependent(storage, vm.meta, d.record.vm_id));
      continue;
    }
    if (!blocked(d.record.snapshot)) continue;
    list += fmt::format("{}{} (snapshot point '{}'{})", list.empty() ? "" : ", ", d.record.path,
                        d.record.snapshot, d.problem.empty() ? "" : "; " + d.problem);
  }
  return list;
}

}  // namespace

Status DeleteSnapshot(common::Storage& storage, const std::string& vm_path,
                      const std::string& name, const DeleteOptions& options) {
  BOOST_OUTCOME_TRY(vm, LockVm(storage, vm_path, "delete"));
  const engine::SnapshotPoint* found = vm.config.FindSnapshot(name);
  if (!found) {
    return Error(ENOENT, "{}: no snapshot point '{}' (snapshot points: {})", vm_path, name,
                 SnapshotNames(vm.config));
  }
  const engine::SnapshotPoint snapshot = *found;
  // Held to the end: no clone can register against the snapshot point meanwhile.
  auto dependents_lock = DependentsLock::Acquire(storage, vm.meta);
  if (!dependents_lock) return dependents_lock.error();
  // A clone of snapshot point T reads the layers of every snapshot point below T.
  auto blocked = [&](const std::string& dependent_snapshot) {
    const engine::SnapshotPoint* t = vm.config.FindSnapshot(dependent_snapshot);
    if (t == nullptr) return true;  // a record this VM cannot place: keep it safe
    for (size_t i = 0; i < vm.config.disks.size(); ++i) {
      const engine::CloneDisk& disk = vm.config.disks[i];
      if (snapshot.layer_ids[i] != disk.root_id() &&
          IsAtOrAbove(disk, t->layer_ids[i], snapshot.layer_ids[i])) {
        return true;
      }
    }
    return false;
  };
  BOOST_OUTCOME_TRY(blocking, BlockingDependents(storage, vm, options, blocked));
  if (!blocking.empty()) {
    return Error(EBUSY, "{}: snapshot point '{}' has dependent clones: {}", vm_path, name,
                 blocking);
  }

  engine::CloneConfig next = vm.config;
  // What the merges will copy (each child layer, plus the deleted layer once per child),
  // for the progress display.
  uint64_t total = 0;
  for (size_t i = 0; i < next.disks.size(); ++i) {
    const engine::CloneDisk& disk = next.disks[i];
    auto owned = [&](const std::string& delta, const std::string& map) -> uint64_t {
      auto layer = engine::DeltaLayer::Open(
          storage, {engine::LayerFilePath(vm.meta, delta), engine::LayerFilePath(vm.meta, map)},
          false);
      return layer ? layer.value()->owned_blocks() * engine::kBlockBytes : 0;
    };
    const engine::FrozenLayer* deleted = disk.FindLayer(snapshot.layer_ids[i]);
    if (deleted == nullptr || snapshot.layer_ids[i] == disk.root_id()) continue;
    const uint64_t lower_bytes = owned(deleted->delta_file, deleted->map_file);
    for (const engine::FrozenLayer& child : disk.frozen) {
      if (child.parent_id == deleted->layer_id) {
        total += lower_bytes + owned(child.delta_file, child.map_file);
      }
    }
    if (disk.parent_layer_id == deleted->layer_id) {
      total += lower_bytes + owned(disk.delta_file, disk.map_file);
    }
  }
  uint64_t done_before = 0;
  for (size_t i = 0; i < next.disks.size(); ++i) {
    engine::CloneDisk& disk = next.disks[i];
    const std::string& id = snapshot.layer_ids[i];
    // Another snapshot point still standing on this layer keeps it as it is.
    const bool shared = std::any_of(next.snapshots.begin(), next.snapshots.end(),
                                    [&](const engine::SnapshotPoint& s) {
                                      return s.name != name && s.layer_ids[i] == id;
                                    });
    if (id == disk.root_id() || shared) continue;  // the base is never merged
    auto layer_it = std::find_if(disk.frozen.begin(), disk.frozen.end(),
                                 [&](const engine::FrozenLayer& l) { return l.layer_id == id; });
    const engine::FrozenLayer lower_record = *layer_it;
    BOOST_OUTCOME_TRY(lower, engine::OpenFrozenLayer(storage, vm.meta, lower_record));
    engine::MergeOptions merge_options;
    merge_options.progress = [&](uint64_t bytes) {
      if (options.progress) options.progress(done_before + bytes, total);
    };
    // Each layer directly above it (its children: later snapshots' layers or the top)
    // becomes a merged copy under the same id.
    auto merge_into = [&](bool is_top, const std::string& delta,
                          const std::string& map) -> Result<std::string> {
      engine::DeltaPaths child_paths{engine::LayerFilePath(vm.meta, delta),
                                     engine::LayerFilePath(vm.meta, map)};
      BOOST_OUTCOME_TRY(child, engine::DeltaLayer::Open(storage, child_paths, false));
      const std::string stem = LayerFileStem(disk.name, engine::ToHex(engine::NewLayerId()));
      // A frozen child stays frozen: packed; the top stays a sparse, writable layer.
      engine::FrozenLayer names;
      NameFrozenLayerFiles(names, stem);
      const engine::DeltaPaths merged_paths =
          is_top ? engine::DeltaPaths{vm.meta + "/" + stem + ".delta", vm.meta + "/" + stem + ".map"}
                 : engine::DeltaPaths{engine::LayerFilePath(vm.meta, names.delta_file),
                                      engine::LayerFilePath(vm.meta, names.map_file)};
      uint64_t copied = 0;
      engine::MergeOptions counted = merge_options;
      counted.packed = !is_top;
      counted.progress = [&](uint64_t bytes) {
        copied = bytes;
        merge_options.progress(bytes);
      };
      BOOST_OUTCOME_TRY(merged, engine::MergeLayers(storage, *lower, *child, merged_paths,
                                                    counted));
      done_before += copied;
      if (!is_top) {
        BOOST_OUTCOME_TRYV(engine::WriteLayerChecksums(
            storage, *merged, engine::LayerFilePath(vm.meta, names.sums_file)));
      }
      return stem;
    };
    for (engine::FrozenLayer& child : disk.frozen) {
      if (child.parent_id != id) continue;
      BOOST_OUTCOME_TRY(stem, merge_into(false, child.delta_file, child.map_file));
      child.parent_id = lower_record.parent_id;
      NameFrozenLayerFiles(child, stem);
      BOOST_OUTCOME_TRY(merged, engine::DeltaLayer::Open(
                                    storage,
                                    {engine::LayerFilePath(vm.meta, child.delta_file),
                                     engine::LayerFilePath(vm.meta, child.map_file)},
                                    false));
      child.generation = merged->header().generation;
    }
    if (disk.parent_layer_id == id) {
      BOOST_OUTCOME_TRY(stem, merge_into(true, disk.delta_file, disk.map_file));
      disk.parent_layer_id = lower_record.parent_id;
      disk.delta_file = stem + ".delta";
      disk.map_file = stem + ".map";
    }
    disk.frozen.erase(std::find_if(disk.frozen.begin(), disk.frozen.end(),
                                   [&](const engine::FrozenLayer& l) { return l.layer_id == id; }));
  }
  std::erase_if(next.snapshots, [&](const engine::SnapshotPoint& s) { return s.name == name; });
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(vm.meta));
  BOOST_OUTCOME_TRYV(vm.Commit(storage, std::move(next)));
  RemoveUnreferencedFiles(storage, vm.meta, vm.config);
  return Status::Ok();
}

Status DeleteVm(common::Storage& storage, const std::string& vm_path,
                const DeleteOptions& options) {
  BOOST_OUTCOME_TRY(vm, LockVm(storage, vm_path, "delete"));
  {
    auto dependents_lock = DependentsLock::Acquire(storage, vm.meta);
    if (!dependents_lock) return dependents_lock.error();
    BOOST_OUTCOME_TRY(blocking, BlockingDependents(storage, vm, options,
                                                   [](const std::string&) { return true; }));
    if (!blocking.empty()) {
      return Error(EBUSY, "{}: the VM has dependent clones: {}", vm_path, blocking);
    }
  }
  // Gone from its place in one step; then from its parent's records; then from disk.
  const std::string aside = fmt::format("{}/.{}.clonefs-deleting-{}",
                                        fs::path(vm.dir).parent_path().string(),
                                        fs::path(vm.dir).filename().string(), ::getpid());
  BOOST_OUTCOME_TRYV(storage.Rename(vm.dir, aside, /*no_replace=*/true));
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(fs::path(vm.dir).parent_path().string()));
  if (const auto& parent = vm.config.parent) {
    const std::string parent_meta = parent->path + "/" + engine::kMetadataDirName;
    if (storage.Stat(parent_meta)) {
      auto lock = DependentsLock::Acquire(storage, parent_meta);
      if (lock) (void)RemoveDependent(storage, parent_meta, vm.config.vm_id);
    }
  }
  vm.lock.reset();
  RemoveTree(storage, aside);
  return Status::Ok();
}

}  // namespace tools
