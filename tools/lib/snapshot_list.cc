// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/snapshot_list.h"

#include <cerrno>

#include "fs/engine/clone_config.h"
#include "fs/engine/disk_chain.h"
#include "tools/lib/dependents.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/progress.h"

namespace tools {
namespace {

using common::Error;
using common::Result;
using Json = nlohmann::ordered_json;

}  // namespace

Result<Json> ListSnapshots(common::Storage& storage, const std::string& vm_path) {
  const std::string dir = VmDirectory(storage, vm_path);
  const std::string meta = dir + "/" + engine::kMetadataDirName;
  if (!IsManagedVm(storage, dir)) {
    return Error(ENOENT, "{}: not managed by clonefs (no snapshot points)", vm_path);
  }
  BOOST_OUTCOME_TRY(config, engine::LoadCloneConfig(storage, dir));
  BOOST_OUTCOME_TRY(dependents, ListDependents(storage, meta, config.vm_id));
  Json out;
  out["vm"] = dir;
  Json list = Json::array();
  for (const engine::SnapshotPoint& snapshot : config.snapshots) {
    Json j;
    j["name"] = snapshot.name;
    j["created_utc"] = snapshot.created_utc;
    uint64_t size = 0;
    uint64_t host = 0;
    bool current = true;
    for (size_t i = 0; i < config.disks.size(); ++i) {
      const engine::CloneDisk& disk = config.disks[i];
      current = current && disk.parent_layer_id == snapshot.layer_ids[i];
      const engine::FrozenLayer* layer = disk.FindLayer(snapshot.layer_ids[i]);
      if (layer == nullptr) continue;  // the base: the VM's own parent disks
      BOOST_OUTCOME_TRY(open, engine::OpenFrozenLayer(storage, meta, *layer));
      size += std::min(open->owned_blocks() * engine::kBlockBytes, disk.capacity_bytes);
      for (const std::string& file : {layer->delta_file, layer->map_file, layer->sums_file}) {
        if (auto st = storage.Stat(engine::LayerFilePath(meta, file))) {
          host += st.value().allocated_bytes;
        }
      }
    }
    j["size_bytes"] = size;
    j["host_bytes"] = host;
    j["current"] = current;
    Json deps = Json::array();
    for (const Dependent& d : dependents) {
      if (d.record.snapshot != snapshot.name) continue;
      deps.push_back({{"path", d.record.path},
                      {"ok", d.problem.empty()},
                      {"problem", d.problem.empty() ? Json(nullptr) : Json(d.problem)}});
    }
    j["dependents"] = std::move(deps);
    list.push_back(std::move(j));
  }
  out["snapshots"] = std::move(list);
  return out;
}

std::string RenderSnapshotsText(const Json& list) {
  std::string out;
  if (list["snapshots"].empty()) {
    return fmt::format("{}: no snapshot points\n", list["vm"].get<std::string>());
  }
  out += fmt::format("{:<24} {:<20} {:>10} {:>10}  {}\n", "NAME", "CREATED (UTC)", "SIZE",
                     "ON DISK", "DEPENDENTS");
  for (const Json& s : list["snapshots"]) {
    std::string deps;
    for (const Json& d : s["dependents"]) {
      deps += (deps.empty() ? "" : ", ") + d["path"].get<std::string>();
      if (!d["ok"].get<bool>()) deps += " (" + d["problem"].get<std::string>() + ")";
    }
    std::string name = s["name"].get<std::string>();
    if (s["current"].get<bool>()) name += " *";
    out += fmt::format("{:<24} {:<20} {:>10} {:>10}  {}\n", name,
                       s["created_utc"].get<std::string>(),
                       HumanBytes(s["size_bytes"].get<uint64_t>()),
                       HumanBytes(s["host_bytes"].get<uint64_t>()), deps.empty() ? "-" : deps);
  }
  out += "(* the VM's current state is based on this snapshot point)\n";
  return out;
}

}  // namespace tools
