// SPDX-License-Identifier: Apache-2.0
#include "vmdk/disk_ddb.h"

#include <algorithm>
#include <functional>
#include <random>

#include <fmt/format.h>

#include "vmdk/disk.h"

namespace vmdk {
namespace {

using Lookup = std::function<std::optional<std::string>(std::string_view key)>;

DiskDdb Inherit(const Lookup& get, uint64_t capacity_sectors) {
  DiskDdb ddb;
  // "4" is the legacy default that converters write; lsilogic is VMware's SCSI default.
  ddb.virtual_hw_version = get("ddb.virtualHWVersion").value_or("4");
  ddb.adapter_type = get("ddb.adapterType").value_or("lsilogic");
  auto cylinders = get("ddb.geometry.cylinders");
  auto heads = get("ddb.geometry.heads");
  auto sectors = get("ddb.geometry.sectors");
  if (cylinders && heads && sectors) {
    ddb.cylinders = *cylinders;
    ddb.heads = *heads;
    ddb.sectors = *sectors;
  } else {
    // VMware's convention: 16 heads for IDE, 255 for SCSI, 63 sectors per track.
    const uint64_t h = ddb.adapter_type == "ide" ? 16 : 255;
    ddb.heads = std::to_string(h);
    ddb.sectors = "63";
    ddb.cylinders = std::to_string(std::min<uint64_t>(capacity_sectors / (h * 63), 65535));
  }
  return ddb;
}

}  // namespace

DiskDdb InheritDdb(const Disk& disk) {
  return Inherit(
      [&](std::string_view key) -> std::optional<std::string> {
        for (const auto& link : disk.links()) {
          if (auto v = link->descriptor().Get(key)) return v;
        }
        return std::nullopt;
      },
      disk.capacity_bytes() / kSectorBytes);
}

DiskDdb InheritDdb(const Descriptor& descriptor, uint64_t capacity_sectors) {
  return Inherit([&](std::string_view key) { return descriptor.Get(key); }, capacity_sectors);
}

void SetDdb(Descriptor& d, const DiskDdb& ddb, uint32_t cid) {
  d.Set("ddb.virtualHWVersion", ddb.virtual_hw_version);
  d.Set("ddb.adapterType", ddb.adapter_type);
  d.Set("ddb.geometry.cylinders", ddb.cylinders);
  d.Set("ddb.geometry.heads", ddb.heads);
  d.Set("ddb.geometry.sectors", ddb.sectors);
  std::random_device random;
  d.Set("ddb.longContentID",
        fmt::format("{:08x}{:08x}{:08x}{:08x}", random(), random(), random(), cid));
}

}  // namespace vmdk
