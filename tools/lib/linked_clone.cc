// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/linked_clone.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <functional>

#include "fs/engine/delta_layer.h"
#include "fs/engine/disk_chain.h"
#include "tools/lib/clone_dir.h"
#include "tools/lib/clone_source.h"
#include "tools/lib/clone_vmx.h"
#include "tools/lib/dependents.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/revert.h"
#include "tools/lib/small_files.h"
#include "tools/lib/snapshot.h"
#include "vmdk/disk.h"
#include "vmdk/flat_descriptor.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using common::Error;
using common::Result;
using common::Status;

struct ParentChain {
  std::unique_ptr<vmdk::Disk> disk;
  engine::ParentFingerprint fingerprint;
};

// Every file of the chain becomes read-only: a parent must never change under its clones.
Status MakeChainReadOnly(common::Storage& storage, const vmdk::Disk& disk) {
  auto protect = [&](const std::string& path) -> Status {
    BOOST_OUTCOME_TRY(info, storage.Stat(path));
    if ((info.mode & 0222) == 0) return Status::Ok();
    return storage.SetMode(path, info.mode & 07555);
  };
  for (const auto& link : disk.links()) {
    BOOST_OUTCOME_TRYV(protect(link->path()));
    for (const vmdk::LinkExtent& extent : link->extents()) {
      if (!extent.path.empty() && extent.extent) {
        BOOST_OUTCOME_TRYV(protect(extent.path));
      }
    }
  }
  return Status::Ok();
}

// NVRAM files are 8-512 KiB; a far larger one is not an nvram.
constexpr uint64_t kMaxNvramBytes = 16 << 20;

// What a new clone is made of: per disk its base chain and the frozen layers it reads
// (none for a VMDK or an unmanaged VM; a snapshot point's chain for a managed VM), and
// for a VM the .vmx (and nvram) it starts from.
struct DiskPlan {
  CloneSourceDisk source;  // name, and the .vmx setting that attaches it
  std::shared_ptr<const vmdk::Disk> base;
  std::shared_ptr<const void> keep_alive;  // what owns `base` (a LayerStack)
  std::string parent_path;
  engine::ParentFingerprint fingerprint;
  std::vector<engine::FrozenLayer> inherited;  // absolute paths, bottom to top
  std::string parent_layer_id;                 // "" for the base
};

struct ClonePlan {
  std::vector<DiskPlan> disks;
  std::optional<CloneSourceVm> vm;
  std::optional<engine::ParentVm> parent;
};

// One disk's empty top layer in `meta`, and its clone.json record.
Result<engine::CloneDisk> BuildDisk(common::Storage& storage, const std::string& meta,
                                    const DiskPlan& plan) {
  engine::CloneDisk clone_disk;
  clone_disk.name = plan.source.name;
  clone_disk.capacity_bytes = plan.base->capacity_bytes();
  clone_disk.parent_path = plan.parent_path;
  clone_disk.parent_fingerprint = plan.fingerprint;
  clone_disk.inherited = plan.inherited;
  clone_disk.parent_layer_id = plan.parent_layer_id;
  clone_disk.delta_file = clone_disk.name + ".delta";
  clone_disk.map_file = clone_disk.name + ".map";

  engine::DeltaHeader header = engine::DeltaHeader::ForCapacity(clone_disk.capacity_bytes);
  header.layer_id = engine::NewLayerId();
  header.parent_fingerprint = engine::Digest(plan.fingerprint);
  BOOST_OUTCOME_TRY(parent_layer_id, engine::ParseLayerId(plan.parent_layer_id));
  header.parent_layer_id = parent_layer_id;
  clone_disk.layer_id = engine::ToHex(header.layer_id);
  const engine::DeltaPaths paths{meta + "/" + clone_disk.delta_file,
                                 meta + "/" + clone_disk.map_file};
  BOOST_OUTCOME_TRY(layer, engine::DeltaLayer::Create(storage, paths, header));
  BOOST_OUTCOME_TRYV(layer->Close());
  // The descriptor a mount presents as D.vmdk (docs/daemon.md), with a CID of its own.
  BOOST_OUTCOME_TRYV(engine::WriteFileAtomically(
      storage, meta + "/" + clone_disk.name + ".vmdk",
      vmdk::MakeFlatDescriptor(*plan.base, clone_disk.name + "-flat.vmdk", vmdk::NewCid())));
  return clone_disk;
}

// Builds the clone inside `dir` (which exists and is empty): metadata, one delta layer per
// disk, and for a VM its .vmx and nvram.
Result<engine::CloneConfig> BuildClone(common::Storage& storage, const std::string& dir,
                                       const LinkedCloneRequest& request,
                                       const std::string& dest_name, const ClonePlan& plan,
                                       const std::string& vm_id) {
  const std::string meta = dir + "/" + engine::kMetadataDirName;
  BOOST_OUTCOME_TRYV(storage.CreateDirectory(meta));

  engine::CloneConfig config;
  config.vm_id = vm_id;
  config.display_name = request.display_name.empty() ? dest_name : request.display_name;
  config.created_utc = UtcNow();
  config.source = request.source;
  config.parent = plan.parent;
  std::vector<CloneSourceDisk> source_disks;
  for (const DiskPlan& disk_plan : plan.disks) {
    BOOST_OUTCOME_TRY(disk, BuildDisk(storage, meta, disk_plan));
    config.disks.push_back(std::move(disk));
    source_disks.push_back(disk_plan.source);
  }

  if (plan.vm) {
    BOOST_OUTCOME_TRY(vmx_name, WriteCloneVmConfig(storage, dir, dest_name, *plan.vm,
                                                   config.display_name, source_disks));
    config.vmx = vmx_name;
  }

  BOOST_OUTCOME_TRYV(engine::WriteFileAtomically(
      storage, meta + "/" + engine::kCloneConfigName, engine::SerializeCloneConfig(config)));
  BOOST_OUTCOME_TRY(lock, storage.CreateExclusive(meta + "/lock"));
  BOOST_OUTCOME_TRYV(lock->Sync());
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(meta));
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(dir));
  return config;
}

// A plain VMDK or an unmanaged VM: each disk's chain, made read-only and fingerprinted.
Result<ClonePlan> PlanFromUnmanaged(common::Storage& storage, const std::string& source_path) {
  BOOST_OUTCOME_TRY(source, ResolveCloneSource(storage, source_path));
  // Every chain is opened and checked before anything is changed or created.
  ClonePlan plan;
  plan.vm = source.vm;
  for (const CloneSourceDisk& disk : source.disks) {
    auto chain = vmdk::Disk::Open(storage, disk.vmdk_path);
    if (!chain) {
      if (!source.vm) return chain.error();
      return chain.error().WithContext(fmt::format("{}: {}", source.vm->vmx_display,
                                                   disk.file_key));
    }
    DiskPlan disk_plan;
    disk_plan.source = disk;
    disk_plan.parent_path = disk.vmdk_path;
    disk_plan.base = std::shared_ptr<const vmdk::Disk>(std::move(chain).value());
    plan.disks.push_back(std::move(disk_plan));
  }
  for (const DiskPlan& disk : plan.disks) {
    BOOST_OUTCOME_TRYV(MakeChainReadOnly(storage, *disk.base));
  }
  for (DiskPlan& disk : plan.disks) {
    BOOST_OUTCOME_TRY(fingerprint, engine::FingerprintChain(storage, *disk.base));
    disk.fingerprint = std::move(fingerprint);
  }
  return plan;
}

// A managed VM's snapshot point: each disk's chain up to the snapshot's layer (checked
// as a mount checks it), and the .vmx and nvram the snapshot recorded.
Result<ClonePlan> PlanFromSnapshot(common::Storage& storage, const std::string& vm_dir,
                                   const engine::CloneConfig& config,
                                   const engine::SnapshotPoint& snapshot,
                                   const std::string& source_display) {
  const std::string meta = vm_dir + "/" + engine::kMetadataDirName;
  ClonePlan plan;
  plan.parent = engine::ParentVm{vm_dir, config.vm_id, snapshot.name};
  BOOST_OUTCOME_TRY(files, SnapshotVmFiles(storage, vm_dir, snapshot, source_display));
  plan.vm = std::move(files.vm);
  const std::vector<CloneSourceDisk>& vmx_disks = files.disks;
  for (size_t i = 0; i < config.disks.size(); ++i) {
    const engine::CloneDisk& disk = config.disks[i];
    const std::string& layer_id = snapshot.layer_ids[i];
    DiskPlan disk_plan;
    disk_plan.source.name = disk.name;
    if (plan.vm) {
      auto it = std::find_if(vmx_disks.begin(), vmx_disks.end(),
                             [&](const CloneSourceDisk& d) { return d.name == disk.name; });
      if (it == vmx_disks.end()) {
        return Error(EINVAL, "{}: attaches no disk {}.vmdk, which the VM has",
                     plan.vm->vmx_display, disk.name);
      }
      disk_plan.source = *it;
    }
    BOOST_OUTCOME_TRY(stack, engine::OpenLowerChain(storage, meta, disk, layer_id));
    const auto& base = static_cast<const engine::VmdkLowerLayers&>(stack->base());
    std::shared_ptr<engine::LayerStack> owner(std::move(stack));
    disk_plan.base = std::shared_ptr<const vmdk::Disk>(owner, &base.disk());
    disk_plan.keep_alive = owner;
    disk_plan.parent_path = disk.parent_path;
    disk_plan.fingerprint = disk.parent_fingerprint;
    BOOST_OUTCOME_TRY(chain, disk.ChainBelow(layer_id));
    for (engine::FrozenLayer& layer : chain) {
      for (std::string* file : {&layer.delta_file, &layer.map_file, &layer.sums_file}) {
        *file = engine::LayerFilePath(meta, *file);
      }
    }
    disk_plan.inherited = std::move(chain);
    disk_plan.parent_layer_id = layer_id;
    plan.disks.push_back(std::move(disk_plan));
  }
  return plan;
}

// "for-c1", or "for-c1-2" when taken.
std::string AutomaticSnapshotName(const engine::CloneConfig& config, const std::string& dest_name) {
  std::string name = "for-" + dest_name;
  for (int n = 2; config.FindSnapshot(name); ++n) name = fmt::format("for-{}-{}", dest_name, n);
  return name;
}

// Builds the clone aside and renames it into place (clone_dir.h); nothing is left
// behind on failure. `registered` runs once the clone is built, before the rename (the
// parent's dependent record); `unregister` undoes it if the rename then fails.
Result<engine::CloneConfig> BuildAside(
    common::Storage& storage, const LinkedCloneRequest& request, const CloneDestination& dest,
    const ClonePlan& plan, const std::function<Status(const engine::CloneConfig&)>& registered,
    const std::function<void(const engine::CloneConfig&)>& unregister) {
  engine::CloneConfig config;
  bool did_register = false;
  Status status = BuildAndPublish(storage, dest, [&](const std::string& dir) -> Status {
    BOOST_OUTCOME_TRY(built, BuildClone(storage, dir, request, dest.name, plan,
                                        engine::ToHex(engine::NewLayerId())));
    config = std::move(built);
    if (registered) {
      BOOST_OUTCOME_TRYV(registered(config));
      did_register = true;
    }
    return Status::Ok();
  });
  if (!status.ok()) {
    if (did_register && unregister) unregister(config);
    return status;
  }
  return config;
}

Result<engine::CloneConfig> CloneManagedVm(common::Storage& storage,
                                           const LinkedCloneRequest& request,
                                           const CloneDestination& dest,
                                           const std::string& vm_dir) {
  const std::string meta = vm_dir + "/" + engine::kMetadataDirName;
  std::string snapshot_name = request.snapshot;
  std::optional<LockedVm> locked;
  if (snapshot_name.empty()) {
    // Like VMware: a linked clone of a VM's current state is a clone of a new snapshot
    // point. Taking one needs the VM stopped.
    auto vm = LockVm(storage, vm_dir, "clone");
    if (!vm) {
      if (vm.error().code() != EBUSY) return vm.error();
      return Error(EBUSY, "{}; name a snapshot point with --snapshot to clone a running VM",
                   vm.error().message());
    }
    snapshot_name = AutomaticSnapshotName(vm.value().config, dest.name);
    BOOST_OUTCOME_TRYV(TakeSnapshot(storage, vm.value(), snapshot_name));
    locked = std::move(vm).value();
  }
  auto find_snapshot = [&](const engine::CloneConfig& config) -> Result<engine::SnapshotPoint> {
    const engine::SnapshotPoint* snapshot = config.FindSnapshot(snapshot_name);
    if (!snapshot) {
      return Error(ENOENT, "{}: no snapshot point '{}' (snapshot points: {})", request.source,
                   snapshot_name, SnapshotNames(config));
    }
    return *snapshot;
  };
  {
    BOOST_OUTCOME_TRY(config, engine::LoadCloneConfig(storage, vm_dir));
    BOOST_OUTCOME_TRYV(find_snapshot(config));  // refused before anything is created
  }
  // The snapshot point cannot be deleted while the clone registers against it, so it is
  // looked up again under the lock.
  auto dependents_lock = DependentsLock::Acquire(storage, meta);
  if (!dependents_lock) return dependents_lock.error();
  BOOST_OUTCOME_TRY(config, engine::LoadCloneConfig(storage, vm_dir));
  BOOST_OUTCOME_TRY(found, find_snapshot(config));
  const engine::SnapshotPoint* snapshot = &found;
  BOOST_OUTCOME_TRY(plan, PlanFromSnapshot(storage, vm_dir, config, *snapshot, request.source));
  auto registered = [&](const engine::CloneConfig& clone) {
    return AddDependent(storage, meta,
                        {dest.path, clone.vm_id, snapshot_name, clone.created_utc});
  };
  auto unregister = [&](const engine::CloneConfig& clone) {
    (void)RemoveDependent(storage, meta, clone.vm_id);
  };
  return BuildAside(storage, request, dest, plan, registered, unregister);
}

// Copies the VM's .vmx and nvram into `meta`/snapshots for a snapshot point.
Status RecordVmFilesForAdoption(common::Storage& storage, const CloneSourceVm& vm,
                                const std::string& meta, const std::string& stem,
                                const std::string& vmx_text, engine::SnapshotPoint& snapshot) {
  const std::string dir = meta + "/" + engine::kSnapshotsDirName;
  BOOST_OUTCOME_TRYV(storage.CreateDirectory(dir));
  const std::string vmx_copy = std::string(engine::kSnapshotsDirName) + "/" + stem + ".vmx";
  BOOST_OUTCOME_TRYV(WriteNewFile(storage, meta + "/" + vmx_copy,
                                  std::as_bytes(std::span(vmx_text.data(), vmx_text.size())),
                                  (vm.vmx_mode & 0777) | 0600));
  snapshot.vmx_file = vmx_copy;
  if (vm.nvram_path) {
    const std::string nvram_copy =
        std::string(engine::kSnapshotsDirName) + "/" + stem + ".nvram";
    BOOST_OUTCOME_TRYV(
        CopySmallFile(storage, *vm.nvram_path, meta + "/" + nvram_copy, kMaxNvramBytes));
    snapshot.nvram_file = nvram_copy;
  }
  return storage.SyncDirectory(dir);
}

}  // namespace

Result<engine::CloneConfig> CreateLinkedClone(common::Storage& storage,
                                              const LinkedCloneRequest& request) {
  BOOST_OUTCOME_TRY(dest, CheckDestination(storage, request.destination));
  if (!request.snapshot.empty()) {
    BOOST_OUTCOME_TRYV(CheckSnapshotName(request.snapshot));
  }

  const std::string vm_dir = VmDirectory(storage, request.source);
  if (IsManagedVm(storage, vm_dir)) return CloneManagedVm(storage, request, dest, vm_dir);
  if (!request.snapshot.empty()) {
    return Error(ENOENT, "{}: has no snapshot points (it is not managed by clonefs; "
                 "`clonectl snapshot` adopts it)", request.source);
  }
  BOOST_OUTCOME_TRY(plan, PlanFromUnmanaged(storage, request.source));
  return BuildAside(storage, request, dest, plan, nullptr, nullptr);
}

Result<engine::CloneConfig> AdoptVm(common::Storage& storage, const std::string& vm_path,
                                    const std::string& snapshot_name) {
  BOOST_OUTCOME_TRYV(CheckSnapshotName(snapshot_name));
  BOOST_OUTCOME_TRY(plan, PlanFromUnmanaged(storage, vm_path));
  if (!plan.vm) {
    return Error(EINVAL, "{}: a plain .vmdk has no snapshot points: make a linked clone of "
                 "it (clonectl clone) and take snapshot points of the clone", vm_path);
  }
  const CloneSourceVm& vm = *plan.vm;
  const std::string vm_dir = fs::path(vm.vmx_path).parent_path().string();
  const std::string vmx_name = fs::path(vm.vmx_path).filename().string();
  const std::string meta = vm_dir + "/" + engine::kMetadataDirName;
  const std::string temp = fmt::format("{}/.clonefs.adopt-tmp-{}", vm_dir, ::getpid());
  RemoveTree(storage, temp);
  BOOST_OUTCOME_TRYV(storage.CreateDirectory(temp));
  auto built = [&]() -> Result<engine::CloneConfig> {
    engine::CloneConfig config;
    config.vm_id = engine::ToHex(engine::NewLayerId());
    config.display_name =
        vm.vmx.Get("displayName").value_or(fs::path(vm_dir).filename().string());
    config.created_utc = UtcNow();
    config.source = vm_path;
    config.vmx = vmx_name;
    // Disks the .vmx names otherwise than "D.vmdk" beside it would reach the read-only
    // base through the mount's passthrough: they are pointed at the presented
    // descriptors (the snapshot point records the .vmx as rewritten).
    VmxFile vmx = vm.vmx;
    bool rewritten = false;
    for (const DiskPlan& disk_plan : plan.disks) {
      BOOST_OUTCOME_TRY(disk, BuildDisk(storage, temp, disk_plan));
      config.disks.push_back(std::move(disk));
      const std::string presented = disk_plan.source.name + ".vmdk";
      if (vmx.Get(disk_plan.source.file_key) != presented) {
        vmx.Set(disk_plan.source.file_key, presented);
        rewritten = true;
      }
    }
    const std::string vmx_text = vmx.Text();
    if (rewritten) {
      const std::string staged = "." + vmx_name + ".clonefs-adopt";
      (void)storage.Remove(vm_dir + "/" + staged);
      BOOST_OUTCOME_TRYV(WriteNewFile(storage, vm_dir + "/" + staged,
                                      std::as_bytes(std::span(vmx_text.data(), vmx_text.size())),
                                      (vm.vmx_mode & 0777) | 0600));
      config.pending_renames.emplace_back(staged, vmx_name);
    }
    // The first snapshot point is the base itself: no layer of its own.
    engine::SnapshotPoint snapshot;
    snapshot.name = snapshot_name;
    snapshot.created_utc = config.created_utc;
    snapshot.layer_ids.assign(config.disks.size(), "");
    BOOST_OUTCOME_TRYV(RecordVmFilesForAdoption(storage, vm, temp, "snapshot-adopted", vmx_text,
                                                snapshot));
    config.snapshots.push_back(std::move(snapshot));
    BOOST_OUTCOME_TRYV(engine::WriteFileAtomically(
        storage, temp + "/" + engine::kCloneConfigName, engine::SerializeCloneConfig(config)));
    BOOST_OUTCOME_TRY(lock, storage.CreateExclusive(temp + "/lock"));
    BOOST_OUTCOME_TRYV(lock->Sync());
    BOOST_OUTCOME_TRYV(storage.SyncDirectory(temp));
    BOOST_OUTCOME_TRYV(storage.SyncDirectory(vm_dir));
    return config;
  }();
  if (built) {
    // The commit: the directory becomes a managed VM in one rename.
    if (Status s = storage.Rename(temp, meta, /*no_replace=*/true); !s.ok()) built = s;
  }
  if (!built) {
    RemoveTree(storage, temp);
    return built.error();
  }
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(vm_dir));
  // Finish the .vmx rewrite under the VM's lock, as any later locker would.
  BOOST_OUTCOME_TRY(locked, LockVm(storage, vm_dir, "snapshot"));
  return locked.config;
}

}  // namespace tools
