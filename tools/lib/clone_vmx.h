// SPDX-License-Identifier: Apache-2.0
#pragma once

// The .vmx of a linked clone, made from its parent's (docs/clone-layout.md, "The clone's
// .vmx"). Every line not listed here is kept byte for byte:
//   - `displayName` becomes the clone's display name (added if the parent has none);
//   - each disk's `<dev>.fileName` becomes "D.vmdk", the descriptor a clonefs mount
//     presents beside the .vmx;
//   - `nvram`, when the parent sets it, names the clone's own copy;
//   - the settings that identify one running VM instance are removed, so that the
//     hypervisor makes new ones for the clone (IsInstanceIdentityKey). A static MAC
//     address (`ethernetN.addressType = "static"`, `ethernetN.address`) is the user's
//     choice and is kept.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/lib/clone_source.h"
#include "tools/lib/vmx_file.h"

namespace tools {

// Keys (any case) that must not be shared by two VMs running at once:
//   uuid.bios, uuid.location, vc.uuid          the VM's BIOS UUID, the hash of where its
//                                               .vmx lives, its vCenter instance UUID
//   ethernetN.generatedAddress(Offset)         the MAC addresses generated from uuid.bios
//   vmci0.id                                   the VMCI context id, unique per host
//   sched.swap.derivedName                     the parent's swap file (.vswp)
//   checkpoint.vmState                         the parent's suspended state (.vmss), which
//                                               is not copied: a clone boots, never resumes
//   migrate.hostLog                            the parent's vMotion log
bool IsInstanceIdentityKey(std::string_view key);

struct CloneVmxEdits {
  std::string display_name;
  std::vector<CloneSourceDisk> disks;  // their file_key settings are rewritten
  // The clone's nvram file name; applied only when the parent sets `nvram`.
  std::optional<std::string> nvram_name;
};

// The clone's .vmx: `parent` with `edits` applied. No I/O.
VmxFile MakeCloneVmx(VmxFile parent, const CloneVmxEdits& edits);

}  // namespace tools
