// SPDX-License-Identifier: Apache-2.0
#include "vmdk/flat_descriptor.h"

#include <random>

#include <fmt/format.h>

#include "vmdk/disk_ddb.h"

namespace vmdk {

uint32_t NewCid() {
  std::random_device random;
  uint32_t cid;
  do {
    cid = random();
  } while (cid >= 0xfffffffe);
  return cid;
}

std::string MakeFlatDescriptor(const Disk& parent, const std::string& flat_file_name,
                               uint32_t cid) {
  const uint64_t sectors = parent.capacity_bytes() / kSectorBytes;
  Descriptor d = Descriptor::CreateEmpty();
  d.Set("CID", fmt::format("{:08x}", cid));
  d.Set("parentCID", "ffffffff");
  d.Set("createType", "monolithicFlat");
  d.SetExtents({ExtentLine{ExtentAccess::kReadWrite, sectors, ExtentType::kFlat, flat_file_name,
                           uint64_t{0}, {}}});

  SetDdb(d, InheritDdb(parent), cid);
  return d.ToString();
}

}  // namespace vmdk
