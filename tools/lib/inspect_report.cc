// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/inspect_report.h"

#include <fmt/format.h>

#include "tools/lib/progress.h"

namespace tools {
namespace {

using Json = nlohmann::ordered_json;

Json CidJson(std::optional<uint32_t> cid) {
  return cid ? Json(fmt::format("{:08x}", *cid)) : Json(nullptr);
}

common::Result<Json> LinkJson(const vmdk::Link& link) {
  const vmdk::Descriptor& d = link.descriptor();
  Json j;
  j["file"] = link.path();
  j["create_type"] = d.create_type();
  j["cid"] = CidJson(d.cid());
  j["parent_cid"] = fmt::format("{:08x}", d.parent_cid());
  auto hint = d.parent_file_name_hint();
  j["parent_file_name_hint"] = hint ? Json(*hint) : Json(nullptr);
  j["capacity_bytes"] = link.capacity_bytes();
  BOOST_OUTCOME_TRY(usage, link.CountAllocation());
  j["data_bytes"] = usage.data_bytes;
  j["zero_bytes"] = usage.zero_bytes;
  j["warnings"] = link.warnings();
  Json extents = Json::array();
  for (const vmdk::LinkExtent& e : link.extents()) {
    Json x;
    x["access"] = vmdk::ToString(e.line.access);
    x["type"] = vmdk::ToString(e.line.type);
    x["file"] = e.line.file_name;
    x["path"] = e.path;
    x["start_bytes"] = e.start_bytes;
    x["size_bytes"] = e.line.size_sectors * vmdk::kSectorBytes;
    x["file_offset_bytes"] = e.line.offset_sectors.value_or(0) * vmdk::kSectorBytes;
    Json format = Json::object();
    if (e.extent) {
      for (const auto& [key, value] : e.extent->Details()) format[key] = value;
    }
    x["format"] = format;
    extents.push_back(std::move(x));
  }
  j["extents"] = std::move(extents);
  return j;
}

}  // namespace

common::Result<Json> InspectDisk(const vmdk::Disk& disk) {
  const vmdk::Link& top = *disk.links().front();
  Json report;
  report["file"] = top.path();
  report["create_type"] = top.descriptor().create_type();
  report["capacity_bytes"] = disk.capacity_bytes();
  report["cid"] = CidJson(top.descriptor().cid());
  report["parent_cid"] = fmt::format("{:08x}", top.descriptor().parent_cid());
  uint64_t data = 0, zero = 0, pos = 0;
  while (pos < disk.capacity_bytes()) {
    BOOST_OUTCOME_TRY(m, disk.Map(pos, disk.capacity_bytes() - pos));
    if (m.state == vmdk::BlockState::kData) data += m.length_bytes;
    if (m.state == vmdk::BlockState::kZero) zero += m.length_bytes;
    pos += m.length_bytes;
  }
  report["allocated_bytes"] = data;
  report["zero_bytes"] = zero;
  Json chain = Json::array();
  for (const auto& link : disk.links()) {
    BOOST_OUTCOME_TRY(j, LinkJson(*link));
    chain.push_back(std::move(j));
  }
  report["chain"] = std::move(chain);
  return report;
}

std::string RenderInspectText(const Json& r) {
  auto str = [](const Json& v) { return v.is_null() ? std::string("-") : v.get<std::string>(); };
  uint64_t capacity = r["capacity_bytes"];
  uint64_t allocated = r["allocated_bytes"];
  std::string out;
  out += fmt::format("file:        {}\n", str(r["file"]));
  out += fmt::format("subformat:   {}\n", str(r["create_type"]));
  out += fmt::format("capacity:    {} bytes ({})\n", capacity, HumanBytes(capacity));
  out += fmt::format("CID:         {} (parentCID {})\n", str(r["cid"]), str(r["parent_cid"]));
  out += fmt::format("allocated:   {} bytes ({}, {:.1f}% of capacity)\n", allocated,
                     HumanBytes(allocated), capacity ? 100.0 * allocated / capacity : 0.0);
  out += fmt::format("chain:       {} link(s), top first\n", r["chain"].size());
  size_t index = 0;
  for (const Json& link : r["chain"]) {
    uint64_t data = link["data_bytes"];
    out += fmt::format("  [{}] {}\n", index++, str(link["file"]));
    out += fmt::format("      {}  CID {}  parentCID {}  data {}  zeroed {}\n",
                       str(link["create_type"]), str(link["cid"]), str(link["parent_cid"]),
                       HumanBytes(data), HumanBytes(link["zero_bytes"].get<uint64_t>()));
    if (!link["parent_file_name_hint"].is_null()) {
      out += fmt::format("      parent: {}\n", str(link["parent_file_name_hint"]));
    }
    for (const Json& e : link["extents"]) {
      std::string format;
      for (const auto& [key, value] : e["format"].items()) {
        format += fmt::format(" {}={}", key, value.get<std::string>());
      }
      out += fmt::format("      extent {} {} {} \"{}\" at {}:{}\n", str(e["access"]),
                         HumanBytes(e["size_bytes"].get<uint64_t>()), str(e["type"]),
                         str(e["file"]), e["start_bytes"].get<uint64_t>(), format);
    }
    for (const Json& w : link["warnings"]) out += fmt::format("      warning: {}\n", str(w));
  }
  return out;
}

}  // namespace tools
