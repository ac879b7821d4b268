// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/clone_config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace engine {
namespace {

using common::Error;
using common::Result;
using common::Status;
using Json = nlohmann::ordered_json;

Result<std::string> RequireString(const Json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string()) {
    return Error(EINVAL, "{}: '{}' is missing or not a string", where, key);
  }
  return j[key].get<std::string>();
}

Result<uint64_t> RequireCount(const Json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_number_unsigned()) {
    return Error(EINVAL, "{}: '{}' is missing or not a non-negative number", where, key);
  }
  return j[key].get<uint64_t>();
}

Result<FrozenLayer> ParseFrozenLayer(const Json& j, const std::string& where) {
  if (!j.is_object()) return Error(EINVAL, "{}: not an object", where);
  FrozenLayer layer;
  BOOST_OUTCOME_TRY(id, RequireString(j, "layer_id", where));
  BOOST_OUTCOME_TRY(parent, RequireString(j, "parent_id", where));
  BOOST_OUTCOME_TRY(delta, RequireString(j, "delta_file", where));
  BOOST_OUTCOME_TRY(map, RequireString(j, "map_file", where));
  BOOST_OUTCOME_TRY(sums, RequireString(j, "sums_file", where));
  BOOST_OUTCOME_TRY(generation, RequireCount(j, "generation", where));
  layer.layer_id = id;
  layer.parent_id = parent;
  layer.delta_file = delta;
  layer.map_file = map;
  layer.sums_file = sums;
  layer.generation = generation;
  return layer;
}

Json FrozenLayerJson(const FrozenLayer& l) {
  return {{"layer_id", l.layer_id},   {"parent_id", l.parent_id}, {"delta_file", l.delta_file},
          {"map_file", l.map_file},   {"sums_file", l.sums_file}, {"generation", l.generation}};
}

Result<std::vector<FrozenLayer>> ParseLayerList(const Json& d, const char* key,
                                                const std::string& where) {
  std::vector<FrozenLayer> layers;
  if (!d.contains(key)) return layers;  // format 1
  if (!d[key].is_array()) return Error(EINVAL, "{}: '{}' is not an array", where, key);
  for (const Json& l : d[key]) {
    BOOST_OUTCOME_TRY(layer, ParseFrozenLayer(l, fmt::format("{} {} {}", where, key,
                                                            layers.size())));
    layers.push_back(std::move(layer));
  }
  return layers;
}

Result<CloneDisk> ParseDisk(const Json& d, const std::string& where) {
  if (!d.is_object()) return Error(EINVAL, "{}: not an object", where);
  CloneDisk disk;
  BOOST_OUTCOME_TRY(disk_name, RequireString(d, "name", where));
  BOOST_OUTCOME_TRY(capacity, RequireCount(d, "capacity_bytes", where));
  BOOST_OUTCOME_TRY(parent, RequireString(d, "parent_path", where));
  BOOST_OUTCOME_TRY(layer, RequireString(d, "layer_id", where));
  BOOST_OUTCOME_TRY(delta, RequireString(d, "delta_file", where));
  BOOST_OUTCOME_TRY(map, RequireString(d, "map_file", where));
  if (!d.contains("parent_fingerprint")) {
    return Error(EINVAL, "{}: 'parent_fingerprint' is missing", where);
  }
  auto fp = FingerprintFromJson(d["parent_fingerprint"]);
  if (!fp) return fp.error().WithContext(where);
  disk.name = disk_name;
  disk.capacity_bytes = capacity;
  disk.parent_path = parent;
  disk.layer_id = layer;
  disk.delta_file = delta;
  disk.map_file = map;
  disk.parent_fingerprint = std::move(fp).value();
  if (d.contains("parent_layer_id")) {
    BOOST_OUTCOME_TRY(parent_layer, RequireString(d, "parent_layer_id", where));
    disk.parent_layer_id = parent_layer;
  }
  BOOST_OUTCOME_TRY(inherited, ParseLayerList(d, "inherited", where));
  BOOST_OUTCOME_TRY(frozen, ParseLayerList(d, "frozen", where));
  disk.inherited = std::move(inherited);
  disk.frozen = std::move(frozen);
  // The chain below the top must be whole: every parent id leads down to the root.
  auto chain = disk.ChainBelow(disk.parent_layer_id);
  if (!chain) return chain.error().WithContext(where);
  return disk;
}

Result<SnapshotPoint> ParseSnapshot(const Json& j, size_t disk_count, const std::string& where) {
  if (!j.is_object()) return Error(EINVAL, "{}: not an object", where);
  SnapshotPoint snapshot;
  BOOST_OUTCOME_TRY(name, RequireString(j, "name", where));
  BOOST_OUTCOME_TRY(created, RequireString(j, "created_utc", where));
  snapshot.name = name;
  snapshot.created_utc = created;
  if (j.contains("vmx_file") && !j["vmx_file"].is_null()) {
    BOOST_OUTCOME_TRY(vmx, RequireString(j, "vmx_file", where));
    snapshot.vmx_file = vmx;
  }
  if (j.contains("nvram_file") && !j["nvram_file"].is_null()) {
    BOOST_OUTCOME_TRY(nvram, RequireString(j, "nvram_file", where));
    snapshot.nvram_file = nvram;
  }
  if (!j.contains("layer_ids") || !j["layer_ids"].is_array() ||
      j["layer_ids"].size() != disk_count) {
    return Error(EINVAL, "{}: 'layer_ids' must list one layer per disk", where);
  }
  for (const Json& id : j["layer_ids"]) {
    if (!id.is_string()) return Error(EINVAL, "{}: 'layer_ids' holds a non-string", where);
    snapshot.layer_ids.push_back(id.get<std::string>());
  }
  return snapshot;
}

}  // namespace

Result<std::vector<FrozenLayer>> CloneDisk::ChainBelow(const std::string& parent_id) const {
  std::vector<FrozenLayer> own;
  std::string id = parent_id;
  const std::string root = root_id();
  while (id != root) {
    auto it = std::find_if(frozen.begin(), frozen.end(),
                           [&](const FrozenLayer& l) { return l.layer_id == id; });
    if (it == frozen.end() || own.size() > frozen.size()) {
      return Error(EINVAL, "disk {}: layer {} is not in its chain", name,
                   id.empty() ? "(base)" : id);
    }
    own.push_back(*it);
    id = it->parent_id;
  }
  std::vector<FrozenLayer> chain = inherited;
  chain.insert(chain.end(), own.rbegin(), own.rend());
  return chain;
}

const FrozenLayer* CloneDisk::FindLayer(const std::string& id) const {
  for (const auto* list : {&frozen, &inherited}) {
    for (const FrozenLayer& l : *list) {
      if (l.layer_id == id) return &l;
    }
  }
  return nullptr;
}

const SnapshotPoint* CloneConfig::FindSnapshot(std::string_view name) const {
  for (const SnapshotPoint& s : snapshots) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string LayerFilePath(const std::string& meta, const std::string& file) {
  return !file.empty() && file.front() == '/' ? file : meta + "/" + file;
}

Result<CloneConfig> ParseCloneConfig(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error(EINVAL, "not a JSON object");
  if (!j.contains("format") || !j["format"].is_number_integer()) {
    return Error(EINVAL, "'format' is missing or not a number");
  }
  CloneConfig c;
  c.format = j["format"].get<int>();
  if (c.format != 1 && c.format != kCloneConfigFormat) {
    return Error(ENOTSUP, "format {} (this clonefs reads 1 and {})", c.format,
                 kCloneConfigFormat);
  }
  BOOST_OUTCOME_TRY(name, RequireString(j, "display_name", "clone"));
  BOOST_OUTCOME_TRY(created, RequireString(j, "created_utc", "clone"));
  BOOST_OUTCOME_TRY(source, RequireString(j, "source", "clone"));
  c.display_name = name;
  c.created_utc = created;
  c.source = source;
  if (j.contains("vmx") && !j["vmx"].is_null()) {
    BOOST_OUTCOME_TRY(vmx, RequireString(j, "vmx", "clone"));
    c.vmx = vmx;
  }
  if (!j.contains("disks") || !j["disks"].is_array() || j["disks"].empty()) {
    return Error(EINVAL, "'disks' is missing or empty");
  }
  for (const Json& d : j["disks"]) {
    BOOST_OUTCOME_TRY(disk, ParseDisk(d, fmt::format("disk {}", c.disks.size())));
    c.disks.push_back(std::move(disk));
  }
  if (c.format == 1) {
    // Format 1 had no VM id; the first layer's id is as unique and never changes.
    c.vm_id = c.disks.front().layer_id;
    c.format = kCloneConfigFormat;
    return c;
  }
  BOOST_OUTCOME_TRY(vm_id, RequireString(j, "vm_id", "clone"));
  c.vm_id = vm_id;
  if (j.contains("parent") && !j["parent"].is_null()) {
    const Json& p = j["parent"];
    ParentVm parent;
    BOOST_OUTCOME_TRY(path, RequireString(p, "path", "parent"));
    BOOST_OUTCOME_TRY(parent_id, RequireString(p, "vm_id", "parent"));
    BOOST_OUTCOME_TRY(snapshot, RequireString(p, "snapshot", "parent"));
    parent.path = path;
    parent.vm_id = parent_id;
    parent.snapshot = snapshot;
    c.parent = std::move(parent);
  }
  if (j.contains("pending_renames")) {
    const Json& renames = j["pending_renames"];
    if (!renames.is_array()) return Error(EINVAL, "'pending_renames' is not an array");
    for (const Json& r : renames) {
      if (!r.is_array() || r.size() != 2 || !r[0].is_string() || !r[1].is_string()) {
        return Error(EINVAL, "'pending_renames' holds something other than [from, to]");
      }
      c.pending_renames.emplace_back(r[0].get<std::string>(), r[1].get<std::string>());
    }
  }
  if (j.contains("snapshots")) {
    if (!j["snapshots"].is_array()) return Error(EINVAL, "'snapshots' is not an array");
    for (const Json& s : j["snapshots"]) {
      const std::string where = fmt::format("snapshot {}", c.snapshots.size());
      BOOST_OUTCOME_TRY(snapshot, ParseSnapshot(s, c.disks.size(), where));
      for (size_t i = 0; i < c.disks.size(); ++i) {
        const std::string& id = snapshot.layer_ids[i];
        if (id != c.disks[i].root_id() && !c.disks[i].FindLayer(id)) {
          return Error(EINVAL, "{} ({}): layer {} of disk {} is not in its chain", where,
                       snapshot.name, id, c.disks[i].name);
        }
      }
      c.snapshots.push_back(std::move(snapshot));
    }
  }
  return c;
}

std::string SerializeCloneConfig(const CloneConfig& c) {
  Json j;
  j["format"] = kCloneConfigFormat;
  j["vm_id"] = c.vm_id;
  j["display_name"] = c.display_name;
  j["created_utc"] = c.created_utc;
  j["source"] = c.source;
  j["vmx"] = c.vmx ? Json(*c.vmx) : Json(nullptr);
  Json disks = Json::array();
  for (const CloneDisk& d : c.disks) {
    Json inherited = Json::array();
    for (const FrozenLayer& l : d.inherited) inherited.push_back(FrozenLayerJson(l));
    Json frozen = Json::array();
    for (const FrozenLayer& l : d.frozen) frozen.push_back(FrozenLayerJson(l));
    disks.push_back({{"name", d.name},
                     {"capacity_bytes", d.capacity_bytes},
                     {"parent_path", d.parent_path},
                     {"parent_fingerprint", ToJson(d.parent_fingerprint)},
                     {"inherited", std::move(inherited)},
                     {"frozen", std::move(frozen)},
                     {"layer_id", d.layer_id},
                     {"parent_layer_id", d.parent_layer_id},
                     {"delta_file", d.delta_file},
                     {"map_file", d.map_file}});
  }
  j["disks"] = std::move(disks);
  j["parent"] = c.parent ? Json{{"path", c.parent->path},
                                {"vm_id", c.parent->vm_id},
                                {"snapshot", c.parent->snapshot}}
                         : Json(nullptr);
  Json snapshots = Json::array();
  for (const SnapshotPoint& s : c.snapshots) {
    snapshots.push_back({{"name", s.name},
                         {"created_utc", s.created_utc},
                         {"vmx_file", s.vmx_file ? Json(*s.vmx_file) : Json(nullptr)},
                         {"nvram_file", s.nvram_file ? Json(*s.nvram_file) : Json(nullptr)},
                         {"layer_ids", s.layer_ids}});
  }
  j["snapshots"] = std::move(snapshots);
  if (!c.pending_renames.empty()) {
    Json renames = Json::array();
    for (const auto& [from, to] : c.pending_renames) renames.push_back({from, to});
    j["pending_renames"] = std::move(renames);
  }
  return j.dump(2) + "\n";
}

Status WriteFileAtomically(common::Storage& storage, const std::string& path,
                           std::string_view contents) {
  const std::string temp = fmt::format("{}.tmp-{}", path, ::getpid());
  (void)storage.Remove(temp);  // a leftover of an earlier crash
  BOOST_OUTCOME_TRY(file, storage.CreateExclusive(temp));
  Status s = file->WriteAt(0, std::as_bytes(std::span(contents.data(), contents.size())));
  if (s.ok()) s = file->Sync();
  file.reset();
  if (s.ok()) s = storage.Rename(temp, path, /*no_replace=*/false);
  if (!s.ok()) {
    (void)storage.Remove(temp);
    return s;
  }
  return storage.SyncDirectory(std::filesystem::path(path).parent_path().string());
}

Status FinishPendingRenames(common::Storage& storage, const std::string& vm_dir,
                            CloneConfig& config) {
  if (config.pending_renames.empty()) return Status::Ok();
  for (const auto& [from, to] : config.pending_renames) {
    const std::string source = vm_dir + "/" + from;
    if (!storage.Stat(source)) continue;  // renamed before an interruption
    BOOST_OUTCOME_TRYV(storage.Rename(source, vm_dir + "/" + to, /*no_replace=*/false));
  }
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(vm_dir));
  CloneConfig done = config;
  done.pending_renames.clear();
  BOOST_OUTCOME_TRYV(WriteFileAtomically(
      storage, vm_dir + "/" + kMetadataDirName + "/" + kCloneConfigName,
      SerializeCloneConfig(done)));
  config = std::move(done);
  return Status::Ok();
}

common::Result<CloneConfig> LoadCloneConfig(common::Storage& storage,
                                            const std::string& clone_dir) {
  const std::string path =
      clone_dir + "/" + kMetadataDirName + "/" + kCloneConfigName;
  auto file = storage.Open(path, common::OpenMode::kReadOnly);
  if (!file) {
    if (file.error().code() == ENOENT) {
      return common::Error(ENOENT, "{}: not a clone (no {}/{})", clone_dir, kMetadataDirName,
                           kCloneConfigName);
    }
    return file.error();
  }
  BOOST_OUTCOME_TRY(size, file.value()->Size());
  if (size > (1 << 20)) {
    return common::Error(EINVAL, "{}: {} bytes is too large for a clone config", path, size);
  }
  std::string text(size, '\0');
  BOOST_OUTCOME_TRYV(
      file.value()->ReadExactAt(0, std::as_writable_bytes(std::span(text)), "clone config"));
  auto config = ParseCloneConfig(text);
  if (!config) return config.error().WithContext(path);
  return config;
}

}  // namespace engine
