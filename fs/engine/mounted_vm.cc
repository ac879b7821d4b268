// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/mounted_vm.h"

#include <cerrno>
#include <filesystem>

#include "fs/engine/clone_config.h"
#include "fs/engine/cow_disk.h"
#include "fs/engine/disk_chain.h"
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
  auto lock = VmLock::Acquire(meta, LockHolder{static_cast<long>(getpid()), request.mountpoint, ""});
  if (!lock) return lock.error().WithContext(vm_dir_);
  lock_ = std::move(lock).value();
  // A revert interrupted after its commit still has files to put in place.
  if (!read_only_) {
    BOOST_OUTCOME_TRYV(FinishPendingRenames(storage, vm_dir_, config));
  }

  for (const CloneDisk& disk : config.disks) {
    for (const FingerprintedFile& file : disk.parent_fingerprint.files) {
      if (fs::path(file.path).parent_path() == vm_dir_) {
        hidden_files_.push_back(fs::path(file.path).filename().string());
      }
    }
    BOOST_OUTCOME_TRY(cow, OpenCloneDisk(storage, meta, disk, !read_only_));
    PresentedDisk presented;
    presented.name = disk.name;
    presented.recovered_after_crash = cow->delta().was_unclean();
    presented.descriptor_path = meta + "/" + disk.name + ".vmdk";
    // Clones made before the presented descriptor was part of the layout get one now.
    if (!storage.Stat(presented.descriptor_path)) {
      const auto& base = static_cast<const LayerStack&>(cow->lower()).base();
      std::string text = vmdk::MakeFlatDescriptor(
          static_cast<const VmdkLowerLayers&>(base).disk(), disk.name + "-flat.vmdk",
          vmdk::NewCid());
      if (read_only_) {
        presented.descriptor_text = std::move(text);
        presented.descriptor_path.clear();
      } else {
        BOOST_OUTCOME_TRYV(WriteFileAtomically(storage, presented.descriptor_path, text));
      }
    }
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
