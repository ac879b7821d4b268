// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/mounted_vm.h"

#include <cerrno>
#include <filesystem>

#include "fs/engine/clone_config.h"
#include "fs/engine/cow_disk.h"
#include "fs/engine/delta_layer.h"
#include "fs/engine/parent_fingerprint.h"
#include "fs/engine/read_only_disk.h"
#include "vmdk/flat_descriptor.h"

namespace engine {
namespace {

namespace fs = std::filesystem;
using common::Error;
using common::Result;
using common::Status;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(),
                                                suffix) == 0;
}

// Compares what stat alone tells of each recorded parent file, before the chain is
// opened: a missing or replaced file is named as such, not as whatever parse error
// opening it would give.
Status CheckRecordedFiles(common::Storage& storage, const ParentFingerprint& recorded) {
  for (const FingerprintedFile& was : recorded.files) {
    auto now = storage.Stat(was.path);
    if (!now) {
      if (now.error().code() == ENOENT) {
        return Error(ENOENT, "{}: the clone's parent is missing", was.path);
      }
      return now.error();
    }
    if (now.value().size_bytes != was.size_bytes) {
      return Error(ESTALE, "{}: the clone's parent was modified: size changed from {} to {} bytes",
                   was.path, was.size_bytes, now.value().size_bytes);
    }
    if (now.value().inode != was.inode) {
      return Error(ESTALE, "{}: the clone's parent was replaced by another file (inode {} is now {})",
                   was.path, was.inode, now.value().inode);
    }
  }
  return Status::Ok();
}

// The layer must be the one clone.json describes, over the parent it was made on.
Status CheckLayerIdentity(const DeltaHeader& header, const CloneDisk& disk,
                          const std::string& map_path) {
  if (ToHex(header.layer_id) != disk.layer_id) {
    return Error(EINVAL, "{}: layer id {} does not match clone.json ({})", map_path,
                 ToHex(header.layer_id), disk.layer_id);
  }
  if (header.parent_fingerprint != Digest(disk.parent_fingerprint)) {
    return Error(EINVAL, "{}: recorded parent fingerprint does not match clone.json", map_path);
  }
  if (header.capacity_bytes != disk.capacity_bytes) {
    return Error(EINVAL, "{}: capacity {} bytes does not match clone.json ({} bytes)", map_path,
                 header.capacity_bytes, disk.capacity_bytes);
  }
  return Status::Ok();
}

}  // namespace

const char* MountedVm::hidden_name() { return kMetadataDirName; }

Result<std::unique_ptr<MountedVm>> MountedVm::Open(common::Storage& storage,
                                                   const MountRequest& request) {
  std::unique_ptr<MountedVm> vm(new MountedVm());
  BOOST_OUTCOME_TRY(info, storage.Stat(request.vm_path));
  if (info.is_directory) {
    BOOST_OUTCOME_TRYV(vm->OpenClone(storage, request));
  } else if (EndsWith(request.vm_path, ".vmx")) {
    MountRequest dir_request = request;
    dir_request.vm_path = fs::absolute(request.vm_path).parent_path().string();
    BOOST_OUTCOME_TRYV(vm->OpenClone(storage, dir_request));
  } else if (EndsWith(request.vm_path, ".vmdk")) {
    BOOST_OUTCOME_TRYV(vm->OpenPlainDisk(storage, request.vm_path));
  } else {
    return Error(EINVAL, "{}: not a VM directory, .vmx or .vmdk", request.vm_path);
  }
  return vm;
}

Status MountedVm::OpenClone(common::Storage& storage, const MountRequest& request) {
  vm_dir_ = fs::absolute(request.vm_path).lexically_normal().string();
  if (vm_dir_.size() > 1 && vm_dir_.back() == '/') vm_dir_.pop_back();
  read_only_ = request.read_only;
  const std::string meta = vm_dir_ + "/" + kMetadataDirName;
  BOOST_OUTCOME_TRY(config, LoadCloneConfig(storage, vm_dir_));

  // The lock comes before any layer is opened: opening for writing clears the clean flag.
  auto lock = VmLock::Acquire(meta, LockHolder{static_cast<long>(getpid()), request.mountpoint});
  if (!lock) return lock.error().WithContext(vm_dir_);
  lock_ = std::move(lock).value();

  for (const CloneDisk& disk : config.disks) {
    BOOST_OUTCOME_TRYV(CheckRecordedFiles(storage, disk.parent_fingerprint));
    BOOST_OUTCOME_TRY(chain, vmdk::Disk::Open(storage, disk.parent_path));
    BOOST_OUTCOME_TRY(fingerprint, FingerprintChain(storage, *chain));
    if (std::string change = DescribeChange(disk.parent_fingerprint, fingerprint);
        !change.empty()) {
      return Error(ESTALE, "{} (the clone's parent was modified)", change);
    }

    const DeltaPaths paths{meta + "/" + disk.delta_file, meta + "/" + disk.map_file};
    BOOST_OUTCOME_TRY(layer, DeltaLayer::Open(storage, paths, !read_only_));
    BOOST_OUTCOME_TRYV(CheckLayerIdentity(layer->header(), disk, paths.map));

    PresentedDisk presented;
    presented.name = disk.name;
    presented.recovered_after_crash = layer->was_unclean();
    presented.descriptor_path = meta + "/" + disk.name + ".vmdk";
    // Clones made before the presented descriptor was part of the layout get one now.
    if (!storage.Stat(presented.descriptor_path)) {
      std::string text = vmdk::MakeFlatDescriptor(*chain, disk.name + "-flat.vmdk",
                                                  vmdk::NewCid());
      if (read_only_) {
        presented.descriptor_text = std::move(text);
        presented.descriptor_path.clear();
      } else {
        BOOST_OUTCOME_TRYV(WriteFileAtomically(storage, presented.descriptor_path, text));
      }
    }
    BOOST_OUTCOME_TRY(cow, CowDisk::Create(std::make_unique<VmdkLowerLayers>(std::move(chain)),
                                           std::move(layer)));
    presented.disk = std::move(cow);
    disks_.push_back(std::move(presented));
  }
  return Status::Ok();
}

Status MountedVm::OpenPlainDisk(common::Storage& storage, const std::string& path) {
  read_only_ = true;
  BOOST_OUTCOME_TRY(chain, vmdk::Disk::Open(storage, path));
  PresentedDisk presented;
  presented.name = fs::path(path).stem().string();
  presented.descriptor_text =
      vmdk::MakeFlatDescriptor(*chain, presented.name + "-flat.vmdk", vmdk::NewCid());
  presented.disk = std::make_unique<ReadOnlyDisk>(
      std::make_unique<VmdkLowerLayers>(std::move(chain)));
  disks_.push_back(std::move(presented));
  return Status::Ok();
}

Status MountedVm::Flush() {
  Status first;
  for (PresentedDisk& d : disks_) {
    Status s = d.disk->Flush();
    if (!s.ok() && first.ok()) first = s.WithContext(d.name + "-flat.vmdk");
  }
  return first;
}

Status MountedVm::Close() {
  if (closed_) return Status::Ok();
  closed_ = true;
  Status first;
  for (PresentedDisk& d : disks_) {
    auto* cow = dynamic_cast<CowDisk*>(d.disk.get());
    if (cow == nullptr || read_only_) continue;
    Status s = cow->delta().Close();
    if (!s.ok() && first.ok()) first = s.WithContext(d.name + "-flat.vmdk");
  }
  lock_.reset();
  return first;
}

MountedVm::~MountedVm() { (void)Close(); }

}  // namespace engine
