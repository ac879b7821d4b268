// SPDX-License-Identifier: Apache-2.0
#pragma once

// The descriptor a mounted clone presents for each disk D: `D.vmdk`, a monolithicFlat
// descriptor with one FLAT extent, `D-flat.vmdk` (the merged read-write disk). Written
// the way vmdk-format.md section 12 says QEMU, VMware and VirtualBox all accept: version
// 1, LF endings, `RW` extent with offset 0, no blank line before the extent line, DDB
// geometry and adapter type inherited from the parent chain.

#include <cstdint>
#include <string>

#include "vmdk/disk.h"

namespace vmdk {

// `cid` is the presented disk's content ID (a new random one per clone; VMware never
// uses ffffffff or fffffffe). ddb.longContentID ends with it; ddb.uuid is not copied,
// since two disks must not share one.
std::string MakeFlatDescriptor(const Disk& parent, const std::string& flat_file_name,
                               uint32_t cid);

// A random CID that is neither ffffffff nor fffffffe.
uint32_t NewCid();

}  // namespace vmdk
