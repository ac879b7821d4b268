// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/full_clone.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "fs/engine/disk_chain.h"
#include "fs/engine/mounted_vm.h"
#include "fs/engine/read_only_disk.h"
#include "tools/lib/clone_dir.h"
#include "tools/lib/clone_source.h"
#include "tools/lib/disk_sources.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/revert.h"
#include "vmdk/descriptor.h"
#include "vmdk/disk.h"
#include "vmdk/disk_ddb.h"
#include "vmdk/sparse_writer.h"

namespace tools {
namespace {

using common::Error;
using common::Result;
using common::Status;

// One disk to copy, opened and checked.
struct SourceDisk {
  std::string name;
  std::string label;                  // for FullCloneDisk::source
  std::unique_ptr<vmdk::Disk> chain;  // a VMDK chain; null for a linked clone's disk
  std::unique_ptr<vmdk::DiskSource> source;
  vmdk::DiskDdb ddb;
};

// Everything CreateFullClone reads, kept open (and a linked clone locked) until it is done.
struct OpenedSource {
  CloneSource resolved;
  std::unique_ptr<engine::MountedVm> clone;  // when SRC is a linked clone
  std::vector<std::unique_ptr<engine::VirtualDisk>> snapshot_disks;  // --snapshot NAME
  std::vector<SourceDisk> disks;
};

Result<SourceDisk> OpenVmdk(common::Storage& storage, const CloneSource& source,
                            const CloneSourceDisk& disk) {
  auto chain = vmdk::Disk::Open(storage, disk.vmdk_path);
  if (!chain) {
    if (!source.vm) return chain.error();
    return chain.error().WithContext(fmt::format("{}: {}", source.vm->vmx_display, disk.file_key));
  }
  SourceDisk opened;
  opened.name = disk.name;
  opened.label = disk.vmdk_path;
  opened.chain = std::move(chain).value();
  opened.source = std::make_unique<VmdkDiskSource>(*opened.chain);
  opened.ddb = vmdk::InheritDdb(*opened.chain);
  return opened;
}

// The DDB of a linked clone's disk, from the descriptor its mount presents (made from the
// parent chain's when the clone was made).
Result<vmdk::DiskDdb> PresentedDdb(common::Storage& storage, const engine::PresentedDisk& disk) {
  std::string text = disk.descriptor_text;
  if (!disk.descriptor_path.empty()) {
    BOOST_OUTCOME_TRY(file, storage.Open(disk.descriptor_path, common::OpenMode::kReadOnly));
    BOOST_OUTCOME_TRY(size, file->Size());
    if (size > vmdk::kMaxDescriptorBytes) {
      return Error(EINVAL, "{}: {} bytes is too large for a descriptor", disk.descriptor_path,
                   size);
    }
    text.assign(size, '\0');
    BOOST_OUTCOME_TRYV(file->ReadExactAt(0, std::as_writable_bytes(std::span(text)), "descriptor"));
  }
  // QEMU rewrites a text descriptor as whole sectors padded with NULs (its CID update).
  text.resize(std::min(text.size(), text.find('\0')));
  auto descriptor = vmdk::Descriptor::Parse(text);
  if (!descriptor) {
    return descriptor.error().WithContext(disk.descriptor_path.empty() ? disk.name + ".vmdk"
                                                                       : disk.descriptor_path);
  }
  return vmdk::InheritDdb(descriptor.value(), disk.disk->capacity_bytes() / vmdk::kSectorBytes);
}

// A linked clone: its disks as the engine merges them (the disks its .vmx names inside
// the clone directory, in .vmx order, then any other disk of the clone), plus any disk its
// .vmx names elsewhere, read as a plain VMDK.
Status OpenLinkedClone(common::Storage& storage, const std::string& dest_path,
                       OpenedSource& opened) {
  const std::string& dir = *opened.resolved.linked_clone_dir;
  // Read-only: nothing of the clone changes. The lock is taken all the same, which
  // refuses a clone mounted by a daemon and keeps it from being mounted while we copy.
  // What a would-be mounter is told holds it:
  const std::string holder = fmt::format("nowhere: clonectl is copying it to {}", dest_path);
  BOOST_OUTCOME_TRY(clone, engine::MountedVm::Open(storage, {dir, holder, /*read_only=*/true}));
  opened.clone = std::move(clone);

  std::map<std::string, engine::PresentedDisk*> presented;
  for (engine::PresentedDisk& disk : opened.clone->disks()) presented[disk.name] = &disk;
  std::set<std::string> used;
  auto add_presented = [&](engine::PresentedDisk& disk) -> Status {
    SourceDisk source;
    source.name = disk.name;
    source.label = fmt::format("{} (disk {})", dir, disk.name);
    source.source = std::make_unique<VirtualDiskSource>(*disk.disk);
    BOOST_OUTCOME_TRY(ddb, PresentedDdb(storage, disk));
    source.ddb = std::move(ddb);
    opened.disks.push_back(std::move(source));
    used.insert(disk.name);
    return Status::Ok();
  };
  for (const CloneSourceDisk& disk : opened.resolved.disks) {
    auto it = presented.find(disk.name);
    if (it != presented.end() && disk.vmdk_path == dir + "/" + disk.name + ".vmdk") {
      BOOST_OUTCOME_TRYV(add_presented(*it->second));
    } else {
      BOOST_OUTCOME_TRY(source, OpenVmdk(storage, opened.resolved, disk));
      opened.disks.push_back(std::move(source));
    }
  }
  for (engine::PresentedDisk& disk : opened.clone->disks()) {
    if (!used.count(disk.name)) {
      BOOST_OUTCOME_TRYV(add_presented(disk));
    }
  }
  return Status::Ok();
}

// A managed VM's snapshot point: each disk's chain up to the snapshot's layer, read
// through the engine without the VM lock (snapshot layers never change; a deletion that
// merges one away meanwhile unlinks files this process still has open), and the .vmx and
// nvram the snapshot recorded.
Status OpenSnapshot(common::Storage& storage, const FullCloneRequest& request,
                    OpenedSource& opened) {
  const std::string dir = VmDirectory(storage, request.source);
  if (!IsManagedVm(storage, dir)) {
    return Error(ENOENT, "{}: has no snapshot points (it is not managed by clonefs)",
                 request.source);
  }
  BOOST_OUTCOME_TRY(config, engine::LoadCloneConfig(storage, dir));
  const engine::SnapshotPoint* snapshot = config.FindSnapshot(request.snapshot);
  if (snapshot == nullptr) {
    return Error(ENOENT, "{}: no snapshot point '{}' (snapshot points: {})", request.source,
                 request.snapshot, SnapshotNames(config));
  }
  BOOST_OUTCOME_TRY(files, SnapshotVmFiles(storage, dir, *snapshot, request.source));
  opened.resolved.vm = std::move(files.vm);
  const std::string meta = dir + "/" + engine::kMetadataDirName;
  for (size_t i = 0; i < config.disks.size(); ++i) {
    const engine::CloneDisk& disk = config.disks[i];
    BOOST_OUTCOME_TRY(stack, engine::OpenLowerChain(storage, meta, disk, snapshot->layer_ids[i]));
    engine::PresentedDisk presented;
    presented.name = disk.name;
    presented.descriptor_path = meta + "/" + disk.name + ".vmdk";
    presented.disk = std::make_unique<engine::ReadOnlyDisk>(std::move(stack));
    SourceDisk source;
    source.name = disk.name;
    source.label = fmt::format("{} at snapshot point '{}'", dir, snapshot->name);
    BOOST_OUTCOME_TRY(ddb, PresentedDdb(storage, presented));
    source.ddb = std::move(ddb);
    source.source = std::make_unique<VirtualDiskSource>(*presented.disk);
    opened.snapshot_disks.push_back(std::move(presented.disk));
    opened.disks.push_back(std::move(source));
    opened.resolved.disks.push_back({"", "", "", disk.name});
  }
  // The clone's .vmx attaches the disks the snapshot's .vmx attached.
  if (opened.resolved.vm) opened.resolved.disks = std::move(files.disks);
  return Status::Ok();
}

Result<std::unique_ptr<OpenedSource>> OpenSource(common::Storage& storage,
                                                 const FullCloneRequest& request,
                                                 const std::string& dest_path) {
  auto opened = std::make_unique<OpenedSource>();
  if (!request.snapshot.empty()) {
    BOOST_OUTCOME_TRYV(OpenSnapshot(storage, request, *opened));
    return opened;
  }
  BOOST_OUTCOME_TRY(resolved,
                    ResolveCloneSource(storage, request.source, {.accept_linked_clones = true}));
  opened->resolved = std::move(resolved);
  if (opened->resolved.linked_clone_dir) {
    BOOST_OUTCOME_TRYV(OpenLinkedClone(storage, dest_path, *opened));
  } else {
    for (const CloneSourceDisk& disk : opened->resolved.disks) {
      BOOST_OUTCOME_TRY(source, OpenVmdk(storage, opened->resolved, disk));
      opened->disks.push_back(std::move(source));
    }
  }
  // Each disk becomes DEST/D.vmdk. A VM's disk names were checked against each other
  // already; a linked clone adds its own disks to those.
  std::set<std::string> names;
  for (const SourceDisk& disk : opened->disks) {
    if (!names.insert(disk.name).second) {
      return Error(EINVAL, "{}: two disks named '{}' would both be written as {}.vmdk",
                   request.source, disk.name, disk.name);
    }
  }
  return opened;
}

}  // namespace

Result<FullClone> CreateFullClone(common::Storage& storage, const FullCloneRequest& request) {
  BOOST_OUTCOME_TRY(dest, CheckDestination(storage, request.destination));
  BOOST_OUTCOME_TRY(opened, OpenSource(storage, request, dest.path));

  uint64_t total_bytes = 0;
  for (const SourceDisk& disk : opened->disks) total_bytes += disk.source->capacity_bytes();
  const std::string display_name = request.display_name.empty() ? dest.name : request.display_name;

  FullClone clone;
  clone.path = dest.path;
  Status built = BuildAndPublish(storage, dest, [&](const std::string& dir) -> Status {
    uint64_t done_before = 0;  // capacity of the disks already written
    for (const SourceDisk& disk : opened->disks) {
      vmdk::SparseWriteOptions options;
      options.ddb = disk.ddb;
      options.threads = request.threads;
      options.cancel = request.cancel;
      if (request.progress) {
        options.progress = [&](uint64_t done) {
          request.progress(done_before + done, total_bytes);
        };
      }
      const auto start = std::chrono::steady_clock::now();
      BOOST_OUTCOME_TRY(
          stats, vmdk::WriteMonolithicSparse(*disk.source, storage, dir + "/" + disk.name + ".vmdk",
                                             options));
      FullCloneDisk written;
      written.name = disk.name;
      written.source = disk.label;
      written.capacity_bytes = stats.capacity_bytes;
      written.data_bytes = stats.grains_written * vmdk::kWriterGrainSectors * vmdk::kSectorBytes;
      written.file_bytes = stats.file_bytes;
      written.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      clone.disks.push_back(std::move(written));
      done_before += stats.capacity_bytes;
    }
    if (opened->resolved.vm) {
      BOOST_OUTCOME_TRY(vmx, WriteCloneVmConfig(storage, dir, dest.name, *opened->resolved.vm,
                                                display_name, opened->resolved.disks));
      clone.vmx = vmx;
    }
    return storage.SyncDirectory(dir);
  });
  if (!built.ok()) {
    if (built.code() == ECANCELED) {
      return Error(ECANCELED, "{}: interrupted; nothing was created", request.destination);
    }
    return built;
  }
  return clone;
}

}  // namespace tools
