// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/clone_config.h"

#include <unistd.h>

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

}  // namespace

Result<CloneConfig> ParseCloneConfig(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error(EINVAL, "not a JSON object");
  if (!j.contains("format") || !j["format"].is_number_integer()) {
    return Error(EINVAL, "'format' is missing or not a number");
  }
  CloneConfig c;
  c.format = j["format"].get<int>();
  if (c.format != kCloneConfigFormat) {
    return Error(ENOTSUP, "format {} (this clonefs reads {})", c.format, kCloneConfigFormat);
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
    std::string where = fmt::format("disk {}", c.disks.size());
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
    c.disks.push_back(std::move(disk));
  }
  return c;
}

std::string SerializeCloneConfig(const CloneConfig& c) {
  Json j;
  j["format"] = c.format;
  j["display_name"] = c.display_name;
  j["created_utc"] = c.created_utc;
  j["source"] = c.source;
  j["vmx"] = c.vmx ? Json(*c.vmx) : Json(nullptr);
  Json disks = Json::array();
  for (const CloneDisk& d : c.disks) {
    disks.push_back({{"name", d.name},
                     {"capacity_bytes", d.capacity_bytes},
                     {"parent_path", d.parent_path},
                     {"parent_fingerprint", ToJson(d.parent_fingerprint)},
                     {"layer_id", d.layer_id},
                     {"delta_file", d.delta_file},
                     {"map_file", d.map_file}});
  }
  j["disks"] = std::move(disks);
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
