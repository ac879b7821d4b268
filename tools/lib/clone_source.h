// SPDX-License-Identifier: Apache-2.0
#pragma once

// What `clonectl clone SRC DEST` clones: SRC resolved into the disks a clone gets, and
// for a VM, the .vmx it came from (docs/clone-layout.md, "Clone sources").
//
// SRC is one of
//   - a plain .vmdk (any subformat or chain): one disk;
//   - a .vmx file: its disks;
//   - a VM directory holding exactly one .vmx: that .vmx's disks.
// A .vmx's disks are the `<dev>.fileName` settings of scsiN:M, sataN:M, ideN:M and nvmeN:M
// devices whose value ends in ".vmdk" (any case), unless `<dev>.present` or the
// controller's `<bus>N.present` is "FALSE" (any case): VMware attaches neither. Relative
// file names are relative to the .vmx's directory. Each disk is presented in the clone as
// D.vmdk and D-flat.vmdk, D being its VMDK's stem, so two disks whose presented files
// would clash (the same stem, or one named like the other's flat extent) are refused.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/storage.h"
#include "tools/lib/vmx_file.h"

namespace tools {

struct CloneSourceDisk {
  std::string device;     // "scsi0:0"; "" for a plain .vmdk source
  std::string file_key;   // the setting naming it, as spelled: "scsi0:0.fileName"; or ""
  std::string vmdk_path;  // absolute and normal
  std::string name;       // D: the VMDK's stem
};

struct CloneSourceVm {
  std::string vmx_path;     // absolute and normal
  std::string vmx_display;  // the .vmx as the user named it, for messages
  uint32_t vmx_mode = 0;    // its permission bits
  VmxFile vmx;
  // The file `nvram = "..."` names, absolute, when the setting is there and the file exists.
  std::optional<std::string> nvram_path;
};

struct CloneSource {
  std::optional<CloneSourceVm> vm;  // unset for a plain .vmdk
  std::vector<CloneSourceDisk> disks;
  // Set (absolute and normal) when SRC is a clonefs linked clone, its directory or its
  // .vmx (accepted only with ResolveOptions::accept_linked_clones). `vm` and `disks` then
  // describe the clone's own .vmx, if it has one: its disks are named "D.vmdk" and
  // resolve to files in this directory that only a mount presents; a linked clone of a
  // plain VMDK has neither. The clone's disks themselves are read through the engine.
  std::optional<std::string> linked_clone_dir;
};

struct ResolveOptions {
  // Whether SRC may be a linked clone (a full clone copies its current state); otherwise
  // one is refused with ENOTSUP (linked clones of managed VMs go through their snapshot points instead).
  bool accept_linked_clones = false;
};

// Resolves SRC as given. Reads the .vmx (if any) and lists directories, but opens no disk:
// the caller opens and checks each chain. Errors name the file and the cause: no .vmx in
// the directory, several, a malformed .vmx, no disks, clashing disk names (EINVAL or
// ENOENT); a directory that is itself a clone is refused with ENOTSUP unless accepted.
common::Result<CloneSource> ResolveCloneSource(common::Storage& storage, const std::string& source,
                                               const ResolveOptions& options = {});

// `path` made absolute and lexically normal, without a trailing '/'. No I/O.
std::string NormalPath(const std::string& path);

// The disks of a parsed .vmx, in the order their fileName settings first appear. No I/O.
// `vmx_dir` (absolute) resolves relative names; `vmx_display` starts error messages.
common::Result<std::vector<CloneSourceDisk>> ListVmxDisks(const VmxFile& vmx,
                                                          const std::string& vmx_dir,
                                                          const std::string& vmx_display);

}  // namespace tools
