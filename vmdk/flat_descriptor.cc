// SPDX-License-Identifier: Apache-2.0
#include "vmdk/flat_descriptor.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

namespace vmdk {
namespace {

// A DDB value as the chain gives it: delta links usually carry only longContentID, so
// look from the top link down to the base.
std::optional<std::string> ChainValue(const Disk& disk, std::string_view key) {
  for (const auto& link : disk.links()) {
    if (auto v = link->descriptor().Get(key)) return v;
  }
  return std::nullopt;
}

}  // namespace

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

  std::string adapter = ChainValue(parent, "ddb.adapterType").value_or("lsilogic");
  d.Set("ddb.virtualHWVersion", ChainValue(parent, "ddb.virtualHWVersion").value_or("4"));
  d.Set("ddb.adapterType", adapter);
  auto cylinders = ChainValue(parent, "ddb.geometry.cylinders");
  auto heads = ChainValue(parent, "ddb.geometry.heads");
  auto geo_sectors = ChainValue(parent, "ddb.geometry.sectors");
  if (!cylinders || !heads || !geo_sectors) {
    // VMware's convention: 16 heads for IDE, 255 for SCSI, 63 sectors per track.
    uint64_t h = adapter == "ide" ? 16 : 255;
    heads = std::to_string(h);
    geo_sectors = "63";
    cylinders = std::to_string(std::min<uint64_t>(sectors / (h * 63), 65535));
  }
  d.Set("ddb.geometry.cylinders", *cylinders);
  d.Set("ddb.geometry.heads", *heads);
  d.Set("ddb.geometry.sectors", *geo_sectors);
  std::random_device random;
  d.Set("ddb.longContentID",
        fmt::format("{:08x}{:08x}{:08x}{:08x}", random(), random(), random(), cid));
  return d.ToString();
}

}  // namespace vmdk
