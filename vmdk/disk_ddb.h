// SPDX-License-Identifier: Apache-2.0
#pragma once

// The disk database entries a new descriptor for a copy or view of a disk carries over
// from the original: the virtual hardware version, the adapter type and the geometry
// (vmdk-format.md section 3.4). Hypervisors present the disk with them; everything else
// in a DDB (ddb.uuid, longContentID, tools versions) belongs to one disk and is not copied.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vmdk/descriptor.h"

namespace vmdk {

class Disk;

struct DiskDdb {
  std::string virtual_hw_version;
  std::string adapter_type;
  std::string cylinders;
  std::string heads;
  std::string sectors;
};

// From a chain: each key from the topmost link that has it (delta links usually carry
// only ddb.longContentID). Missing keys get the defaults below.
DiskDdb InheritDdb(const Disk& disk);
// From one descriptor (a view's own descriptor, which already holds the inherited keys).
DiskDdb InheritDdb(const Descriptor& descriptor, uint64_t capacity_sectors);

// Sets ddb.virtualHWVersion, ddb.adapterType, ddb.geometry.* and a new ddb.longContentID
// ending with `cid`, in that order.
void SetDdb(Descriptor& descriptor, const DiskDdb& ddb, uint32_t cid);

}  // namespace vmdk
