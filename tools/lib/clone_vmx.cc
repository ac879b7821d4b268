// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/clone_vmx.h"

namespace tools {
namespace {

constexpr std::string_view kIdentityKeys[] = {
    "uuid.bios",          "uuid.location",   "vc.uuid", "vmci0.id", "sched.swap.derivedName",
    "checkpoint.vmState", "migrate.hostLog",
};

// Per-adapter identity: ethernetN.<suffix>.
constexpr std::string_view kEthernetIdentitySuffixes[] = {
    ".generatedAddress",
    ".generatedAddressOffset",
};

constexpr std::string_view kEthernet = "ethernet";

bool IsEthernetIdentityKey(std::string_view key) {
  if (key.size() <= kEthernet.size() ||
      !VmxFile::SameKey(key.substr(0, kEthernet.size()), kEthernet)) {
    return false;
  }
  size_t digits = kEthernet.size();
  while (digits < key.size() && key[digits] >= '0' && key[digits] <= '9') ++digits;
  if (digits == kEthernet.size()) return false;
  const std::string_view suffix = key.substr(digits);
  for (std::string_view identity : kEthernetIdentitySuffixes) {
    if (VmxFile::SameKey(suffix, identity)) return true;
  }
  return false;
}

}  // namespace

bool IsInstanceIdentityKey(std::string_view key) {
  for (std::string_view identity : kIdentityKeys) {
    if (VmxFile::SameKey(key, identity)) return true;
  }
  return IsEthernetIdentityKey(key);
}

VmxFile MakeCloneVmx(VmxFile parent, const CloneVmxEdits& edits) {
  for (const VmxFile::Setting& setting : parent.Settings()) {
    if (IsInstanceIdentityKey(setting.key)) parent.Remove(setting.key);
  }
  parent.Set("displayName", edits.display_name);
  for (const CloneSourceDisk& disk : edits.disks) {
    parent.Set(disk.file_key, disk.name + ".vmdk");
  }
  if (edits.nvram_name && parent.Get("nvram")) parent.Set("nvram", *edits.nvram_name);
  return parent;
}

}  // namespace tools
