// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/managed_vm.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <set>

#include "fs/engine/delta_layer.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using common::Error;
using common::Result;
using common::Status;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// What a clone.json references in its metadata directory, as names relative to it.
std::set<std::string> ReferencedFiles(const engine::CloneConfig& config) {
  std::set<std::string> names = {engine::kCloneConfigName, "lock", "lock.owner", "daemon.log"};
  for (const engine::CloneDisk& disk : config.disks) {
    names.insert(disk.delta_file);
    names.insert(disk.map_file);
    names.insert(disk.name + ".vmdk");  // the presented descriptor
    for (const engine::FrozenLayer& layer : disk.frozen) {
      names.insert(layer.delta_file);
      names.insert(layer.map_file);
      names.insert(layer.sums_file);
    }
  }
  for (const engine::SnapshotPoint& snapshot : config.snapshots) {
    if (snapshot.vmx_file) names.insert(*snapshot.vmx_file);
    if (snapshot.nvram_file) names.insert(*snapshot.nvram_file);
  }
  return names;
}

bool IsOursToRemove(const std::string& name) {
  return EndsWith(name, ".delta") || EndsWith(name, ".packed") || EndsWith(name, ".map") ||
         EndsWith(name, ".sums") ||
         name.find(".tmp-") != std::string::npos;
}

}  // namespace

std::string VmDirectory(common::Storage& storage, const std::string& vm_path) {
  fs::path p = fs::absolute(vm_path).lexically_normal();
  std::string text = p.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  if (auto info = storage.Stat(text); EndsWith(text, ".vmx") && info && !info.value().is_directory) {
    return fs::path(text).parent_path().string();
  }
  return text;
}

bool IsManagedVm(common::Storage& storage, const std::string& dir) {
  return storage.Stat(dir + "/" + engine::kMetadataDirName + "/" + engine::kCloneConfigName)
      .has_value();
}

Result<std::string> ManagedVmDirectory(common::Storage& storage, const std::string& vm_path) {
  std::string dir = VmDirectory(storage, vm_path);
  if (IsManagedVm(storage, dir)) return dir;
  auto info = storage.Stat(dir);
  if (!info) {
    if (info.error().code() == ENOENT) return Error(ENOENT, "{}: no such VM directory", vm_path);
    return info.error();
  }
  if (!info.value().is_directory) return Error(ENOTDIR, "{}: not a VM directory", vm_path);
  return Error(ENOENT, "{}: not managed by clonefs (no {}/{})", vm_path, engine::kMetadataDirName,
               engine::kCloneConfigName);
}

Status LockedVm::Commit(common::Storage& storage, engine::CloneConfig next) {
  BOOST_OUTCOME_TRYV(engine::WriteFileAtomically(storage, meta + "/" + engine::kCloneConfigName,
                                                 engine::SerializeCloneConfig(next)));
  config = std::move(next);
  return Status::Ok();
}

Result<LockedVm> LockVm(common::Storage& storage, const std::string& vm_path,
                        const std::string& operation) {
  LockedVm vm;
  vm.dir = VmDirectory(storage, vm_path);
  vm.meta = vm.dir + "/" + engine::kMetadataDirName;
  if (!IsManagedVm(storage, vm.dir)) {
    BOOST_OUTCOME_TRY(info, storage.Stat(vm.dir));
    if (!info.is_directory) return Error(ENOTDIR, "{}: not a VM directory", vm_path);
    return Error(ENOENT, "{}: not managed by clonefs (no {}/{})", vm_path,
                 engine::kMetadataDirName, engine::kCloneConfigName);
  }
  auto lock = engine::VmLock::Acquire(
      vm.meta, engine::LockHolder{static_cast<long>(::getpid()), "", operation});
  if (!lock) return lock.error().WithContext(vm_path);
  vm.lock = std::move(lock).value();
  // Read under the lock: a change that committed just before is seen whole.
  BOOST_OUTCOME_TRY(config, engine::LoadCloneConfig(storage, vm.dir));
  vm.config = std::move(config);
  BOOST_OUTCOME_TRYV(engine::FinishPendingRenames(storage, vm.dir, vm.config));
  RemoveUnreferencedFiles(storage, vm.meta, vm.config);
  return vm;
}

void RemoveUnreferencedFiles(common::Storage& storage, const std::string& meta,
                             const engine::CloneConfig& config) {
  const std::set<std::string> keep = ReferencedFiles(config);
  for (const std::string& dir : {std::string(), std::string(engine::kSnapshotsDirName)}) {
    const std::string path = dir.empty() ? meta : meta + "/" + dir;
    auto names = storage.ListDirectory(path);
    if (!names) continue;
    for (const std::string& name : names.value()) {
      const std::string relative = dir.empty() ? name : dir + "/" + name;
      const bool snapshot_copy = !dir.empty();
      if (keep.count(relative) || (!snapshot_copy && !IsOursToRemove(name))) continue;
      (void)storage.Remove(path + "/" + name);
    }
  }
}

std::string LayerFileStem(const std::string& disk_name, const std::string& layer_id) {
  return disk_name + "-" + layer_id.substr(0, 16);
}

void NameFrozenLayerFiles(engine::FrozenLayer& layer, const std::string& stem) {
  layer.delta_file = stem + ".packed";
  layer.map_file = stem + ".packed.map";
  layer.sums_file = stem + ".sums";
}

Status StartEmptyTop(common::Storage& storage, const std::string& meta, engine::CloneDisk& disk,
                     const std::string& parent_id) {
  engine::DeltaHeader header = engine::DeltaHeader::ForCapacity(disk.capacity_bytes);
  header.layer_id = engine::NewLayerId();
  BOOST_OUTCOME_TRY(parent, engine::ParseLayerId(parent_id));
  header.parent_layer_id = parent;
  header.parent_fingerprint = engine::Digest(disk.parent_fingerprint);
  const std::string id = engine::ToHex(header.layer_id);
  const std::string stem = LayerFileStem(disk.name, id);
  BOOST_OUTCOME_TRY(fresh, engine::DeltaLayer::Create(
                               storage, {meta + "/" + stem + ".delta", meta + "/" + stem + ".map"},
                               header));
  BOOST_OUTCOME_TRYV(fresh->Close());
  disk.layer_id = id;
  disk.parent_layer_id = parent_id;
  disk.delta_file = stem + ".delta";
  disk.map_file = stem + ".map";
  return Status::Ok();
}

Result<SnapshotVm> SnapshotVmFiles(common::Storage& storage, const std::string& vm_dir,
                                   const engine::SnapshotPoint& snapshot,
                                   const std::string& source_display) {
  SnapshotVm out;
  if (!snapshot.vmx_file) return out;
  const std::string meta = vm_dir + "/" + engine::kMetadataDirName;
  CloneSourceVm vm;
  vm.vmx_path = meta + "/" + *snapshot.vmx_file;
  vm.vmx_display = fmt::format("{} (snapshot '{}')", source_display, snapshot.name);
  BOOST_OUTCOME_TRY(info, storage.Stat(vm.vmx_path));
  vm.vmx_mode = info.mode;
  BOOST_OUTCOME_TRY(file, storage.Open(vm.vmx_path, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(size, file->Size());
  std::string text(size, '\0');
  BOOST_OUTCOME_TRYV(file->ReadExactAt(0, std::as_writable_bytes(std::span(text)), ".vmx"));
  BOOST_OUTCOME_TRY(vmx, VmxFile::Parse(text, vm.vmx_display));
  BOOST_OUTCOME_TRY(disks, ListVmxDisks(vmx, vm_dir, vm.vmx_display));
  out.disks = std::move(disks);
  vm.vmx = std::move(vmx);
  if (snapshot.nvram_file) vm.nvram_path = meta + "/" + *snapshot.nvram_file;
  out.vm = std::move(vm);
  return out;
}

std::string UtcNow() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace tools
