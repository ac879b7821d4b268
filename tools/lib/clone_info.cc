// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/clone_info.h"

#include <fmt/format.h>

#include "fs/engine/vm_lock.h"
#include "tools/lib/dependents.h"
#include "tools/lib/disk_layers.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/parent_vm.h"
#include "tools/lib/progress.h"

namespace tools {
namespace {

using common::Result;
using Json = nlohmann::ordered_json;

Json OptionalText(const std::string& text) { return text.empty() ? Json(nullptr) : Json(text); }

// Whether a daemon (a mount) or a clonectl command holds the VM's lock, and which.
void DescribeHolder(const std::string& meta, Json& info) {
  auto holder = engine::VmLock::Holder(meta);
  const bool busy = holder && holder->mountpoint.empty() && !holder->operation.empty();
  info["mounted"] = holder.has_value() && !busy;
  if (holder && !busy) {
    info["mount"] = {{"mountpoint", holder->mountpoint}, {"pid", holder->pid}};
  }
  if (busy) info["busy"] = {{"operation", holder->operation}, {"pid", holder->pid}};
}

Json DescribeParent(common::Storage& storage, const engine::CloneConfig& config) {
  if (!config.parent) return nullptr;
  const ParentVmState state = LookUpParentVm(storage, *config.parent);
  return {{"path", config.parent->path},
          {"snapshot", config.parent->snapshot},
          {"vm_id", config.parent->vm_id},
          {"ok", state.problem.empty()},
          {"problem", OptionalText(state.problem)}};
}

}  // namespace

Result<engine::CloneConfig> LoadCloneConfig(common::Storage& storage,
                                            const std::string& clone_dir) {
  return engine::LoadCloneConfig(storage, clone_dir);
}

Result<Json> CloneInfo(common::Storage& storage, const std::string& vm_path) {
  const std::string dir = VmDirectory(storage, vm_path);
  BOOST_OUTCOME_TRY(config, LoadCloneConfig(storage, dir));
  const std::string meta = dir + "/" + engine::kMetadataDirName;
  Json info;
  info["path"] = dir;
  info["display_name"] = config.display_name;
  info["created_utc"] = config.created_utc;
  info["source"] = config.source;
  info["vm_id"] = config.vm_id;
  info["vmx"] = config.vmx ? Json(*config.vmx) : Json(nullptr);
  DescribeHolder(meta, info);
  info["parent"] = DescribeParent(storage, config);

  uint64_t space_used = 0;
  uint64_t inherited = 0;
  Json disks = Json::array();
  for (size_t i = 0; i < config.disks.size(); ++i) {
    const engine::CloneDisk& d = config.disks[i];
    Json layers = DescribeDiskLayers(storage, dir, config, i, info["mounted"].get<bool>());
    const Json& base = layers["chain"].front();
    const Json& top = layers["chain"].back();
    Json j;
    j["name"] = d.name;
    j["capacity_bytes"] = d.capacity_bytes;
    j["parent_path"] = d.parent_path;
    j["parent_ok"] = base["ok"];
    j["parent_problem"] = base["problem"];
    j["delta_used_bytes"] = top["host_bytes"];
    j["owned_bytes"] = top["owned_bytes"];
    space_used += layers["space_used_bytes"].get<uint64_t>();
    inherited += layers["inherited_bytes"].get<uint64_t>();
    for (auto& [key, value] : layers.items()) j[key] = std::move(value);
    disks.push_back(std::move(j));
  }
  info["disks"] = std::move(disks);

  // A record that cannot be read is shown, not fatal: the VM itself is fine.
  std::vector<Dependent> dependents;
  if (auto list = ListDependents(storage, meta, config.vm_id)) {
    dependents = std::move(list).value();
  } else {
    info["dependents_problem"] = list.error().message();
  }
  Json snapshots = Json::array();
  for (const engine::SnapshotPoint& snapshot : config.snapshots) {
    bool current = true;
    for (size_t i = 0; i < config.disks.size(); ++i) {
      current = current && config.disks[i].parent_layer_id == snapshot.layer_ids[i];
    }
    Json paths = Json::array();
    for (const Dependent& d : dependents) {
      if (d.record.snapshot == snapshot.name) paths.push_back(d.record.path);
    }
    snapshots.push_back({{"name", snapshot.name},
                         {"created_utc", snapshot.created_utc},
                         {"current", current},
                         {"dependents", std::move(paths)}});
  }
  info["snapshots"] = std::move(snapshots);
  Json deps = Json::array();
  for (const Dependent& d : dependents) {
    deps.push_back({{"path", d.record.path},
                    {"snapshot", d.record.snapshot},
                    {"created_utc", d.record.created_utc},
                    {"ok", d.problem.empty()},
                    {"problem", OptionalText(d.problem)}});
  }
  info["dependents"] = std::move(deps);
  info["space_used_bytes"] = space_used;
  info["inherited_bytes"] = inherited;
  return info;
}

namespace {

std::string Bytes(const Json& value) {
  return value.is_null() ? "?" : HumanBytes(value.get<uint64_t>());
}

// One row of a disk's layer table.
std::string LayerRow(const Json& layer) {
  if (layer["kind"] == "base") {
    return fmt::format(
        "  {:<18} {:<16} {:>10} {:>10}  {} ({})\n", "base", "-", "-", "-",
        layer["path"].get<std::string>(),
        layer["ok"].get<bool>() ? "fingerprint matches" : layer["problem"].get<std::string>());
  }
  std::string origin = layer["kind"] == "top" ? "top" : layer["origin"].get<std::string>();
  if (!layer["snapshot"].is_null()) {
    origin += ", " + layer["snapshot"].get<std::string>();
  }
  std::string row = fmt::format("  {:<18} {:<16} {:>10} {:>10}  {}",
                                layer["layer_id"].get<std::string>().substr(0, 16), origin,
                                Bytes(layer["owned_bytes"]), Bytes(layer["host_bytes"]),
                                layer["delta_file"].get<std::string>());
  if (!layer["ok"].get<bool>()) row += " (" + layer["problem"].get<std::string>() + ")";
  return row + "\n";
}

}  // namespace

std::string RenderCloneInfoText(const Json& info) {
  std::string out;
  out += fmt::format("vm:          {} ({})\n", info["path"].get<std::string>(),
                     info["display_name"].get<std::string>());
  out += fmt::format("created:     {} from {}\n", info["created_utc"].get<std::string>(),
                     info["source"].get<std::string>());
  if (const Json& parent = info["parent"]; !parent.is_null()) {
    out += fmt::format(
        "parent:      {}, snapshot point '{}'{}\n", parent["path"].get<std::string>(),
        parent["snapshot"].get<std::string>(),
        parent["ok"].get<bool>() ? "" : " (" + parent["problem"].get<std::string>() + ")");
  }
  if (info["mounted"].get<bool>()) {
    out += fmt::format("mounted:     yes, at {} (pid {})\n",
                       info["mount"]["mountpoint"].get<std::string>(),
                       info["mount"]["pid"].get<long>());
  } else if (info.contains("busy")) {
    out +=
        fmt::format("mounted:     no; busy (clonectl {}, pid {})\n",
                    info["busy"]["operation"].get<std::string>(), info["busy"]["pid"].get<long>());
  } else {
    out += "mounted:     no\n";
  }
  out += fmt::format(
      "space used:  {} by this VM's layers, {} by layers it shares with its "
      "parents\n",
      HumanBytes(info["space_used_bytes"].get<uint64_t>()),
      HumanBytes(info["inherited_bytes"].get<uint64_t>()));
  for (const Json& d : info["disks"]) {
    out += fmt::format(
        "disk {}: {} ({} bytes), layers bottom to top:\n", d["name"].get<std::string>(),
        HumanBytes(d["capacity_bytes"].get<uint64_t>()), d["capacity_bytes"].get<uint64_t>());
    out += fmt::format("  {:<18} {:<16} {:>10} {:>10}  {}\n", "LAYER", "ORIGIN", "HOLDS", "ON DISK",
                       "FILE");
    for (const Json& layer : d["chain"]) out += LayerRow(layer);
    if (!d["other_layers"].empty()) {
      out += "  on other branches (kept for their snapshot points):\n";
      for (const Json& layer : d["other_layers"]) out += LayerRow(layer);
    }
  }
  if (info["snapshots"].empty()) {
    out += "snapshot points: none\n";
  } else {
    out += "snapshot points (* the current state grew from it):\n";
    for (const Json& s : info["snapshots"]) {
      std::string name = s["name"].get<std::string>();
      if (s["current"].get<bool>()) name += " *";
      out += fmt::format("  {:<24} {}\n", name, s["created_utc"].get<std::string>());
    }
  }
  if (info.contains("dependents_problem")) {
    out += fmt::format("dependents:  unreadable ({})\n",
                       info["dependents_problem"].get<std::string>());
  } else if (info["dependents"].empty()) {
    out += "dependents:  none\n";
  } else {
    out += "dependents:\n";
    for (const Json& d : info["dependents"]) {
      out += fmt::format("  {} (snapshot point '{}'): {}\n", d["path"].get<std::string>(),
                         d["snapshot"].get<std::string>(),
                         d["ok"].get<bool>() ? "ok" : d["problem"].get<std::string>());
    }
  }
  return out;
}

}  // namespace tools
