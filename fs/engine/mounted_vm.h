// SPDX-License-Identifier: Apache-2.0
#pragma once

// Everything a mount serves, opened and checked, with no FUSE in sight: the VM directory
// whose files are passed through, and per virtual disk D the merged disk (D-flat.vmdk)
// and its descriptor (D.vmdk). The daemon builds one at start-up and closes it at
// unmount; the FUSE adapter only translates requests into calls on it.
//
// What can be mounted (DESIGN.md, "Commands"):
// - a linked clone's directory, or its .vmx: read-write (read-only with -o ro). The VM
//   lock is taken first; each parent chain is checked against its recorded fingerprint
//   (a missing or modified parent refuses the mount, naming the file and the change);
//   each delta layer's header must match clone.json; a layer left unclean by a crash is
//   reopened at its last persisted state.
// - a plain VMDK (any subformat or chain, never touched by clonefs): read-only.

#include <memory>
#include <string>
#include <vector>

#include "common/storage.h"
#include "fs/engine/virtual_disk.h"
#include "fs/engine/vm_lock.h"

namespace engine {

struct PresentedDisk {
  std::string name;                   // D: shown as D.vmdk and D-flat.vmdk
  std::unique_ptr<VirtualDisk> disk;  // D-flat.vmdk
  // D.vmdk: a real, writable file in the metadata directory (QEMU rewrites the CID in it
  // on first write, and the rewrite must persist), or, for a read-only plain VMDK, "" and
  // the text in descriptor_text.
  std::string descriptor_path;
  std::string descriptor_text;
  bool recovered_after_crash = false;
};

struct MountRequest {
  std::string vm_path;     // a clone directory, its .vmx, or a plain .vmdk
  std::string mountpoint;  // absolute; recorded as the lock's holder
  bool read_only = false;
};

class MountedVm {
 public:
  static common::Result<std::unique_ptr<MountedVm>> Open(common::Storage& storage,
                                                         const MountRequest& request);
  ~MountedVm();

  // The directory whose files the mount passes through ("" for a plain VMDK: none).
  const std::string& vm_dir() const { return vm_dir_; }
  // The metadata directory's name inside vm_dir, hidden from the mount.
  static const char* hidden_name();
  // Other files directly in vm_dir the mount hides: the base chain's files when the VM
  // directory holds them (a VM adopted by its first snapshot point), which only the
  // layers above may read. (Chain files in subdirectories stay visible, read-only.)
  const std::vector<std::string>& hidden_files() const { return hidden_files_; }
  bool read_only() const { return read_only_; }
  std::vector<PresentedDisk>& disks() { return disks_; }

  // Durability point for every disk; the first failure is returned, all are tried.
  common::Status Flush();
  // Flush and mark every layer cleanly shut down; then release the lock. Call once no
  // request can arrive any more (after unmount).
  common::Status Close();

 private:
  MountedVm() = default;
  common::Status OpenClone(common::Storage& storage, const MountRequest& request);
  common::Status OpenPlainDisk(common::Storage& storage, const std::string& path);

  std::string vm_dir_;
  bool read_only_ = false;
  bool closed_ = false;
  std::unique_ptr<VmLock> lock_;
  std::vector<PresentedDisk> disks_;
  std::vector<std::string> hidden_files_;
};

}  // namespace engine
