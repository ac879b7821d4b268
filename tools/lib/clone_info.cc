// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/clone_info.h"

#include <cerrno>

#include "fs/engine/delta_layer.h"
#include "fs/engine/vm_lock.h"
#include "tools/lib/progress.h"
#include "vmdk/disk.h"

namespace tools {
namespace {

using common::Error;
using common::Result;
using Json = nlohmann::ordered_json;

}  // namespace

Result<engine::CloneConfig> LoadCloneConfig(common::Storage& storage,
                                            const std::string& clone_dir) {
  return engine::LoadCloneConfig(storage, clone_dir);
}

Result<Json> CloneInfo(common::Storage& storage, const std::string& clone_dir) {
  BOOST_OUTCOME_TRY(config, LoadCloneConfig(storage, clone_dir));
  const std::string meta = clone_dir + "/" + engine::kMetadataDirName;
  Json info;
  info["path"] = clone_dir;
  info["display_name"] = config.display_name;
  info["created_utc"] = config.created_utc;
  info["source"] = config.source;
  // Whether a daemon holds the clone's lock (a mount), and which.
  if (auto holder = engine::VmLock::Holder(meta)) {
    info["mounted"] = true;
    info["mount"] = {{"mountpoint", holder->mountpoint}, {"pid", holder->pid}};
  } else {
    info["mounted"] = false;
  }
  Json disks = Json::array();
  for (const engine::CloneDisk& d : config.disks) {
    Json j;
    j["name"] = d.name;
    j["capacity_bytes"] = d.capacity_bytes;
    j["parent_path"] = d.parent_path;
    std::string problem;
    if (auto parent = vmdk::Disk::Open(storage, d.parent_path); !parent) {
      problem = parent.error().message();
    } else if (auto now = engine::FingerprintChain(storage, *parent.value()); !now) {
      problem = now.error().message();
    } else {
      problem = engine::DescribeChange(d.parent_fingerprint, now.value());
    }
    j["parent_ok"] = problem.empty();
    j["parent_problem"] = problem.empty() ? Json(nullptr) : Json(problem);
    uint64_t used = 0;
    for (const std::string& file : {d.delta_file, d.map_file}) {
      if (auto st = storage.Stat(meta + "/" + file)) used += st.value().allocated_bytes;
    }
    j["delta_used_bytes"] = used;
    auto layer = engine::DeltaLayer::Open(storage, {meta + "/" + d.delta_file,
                                                    meta + "/" + d.map_file},
                                          /*writable=*/false);
    if (!layer) return layer.error();
    uint64_t owned = 0;
    for (uint64_t b = 0; b < layer.value()->block_count();) {
      uint64_t run = layer.value()->RunLength(b, layer.value()->block_count() - b);
      if (layer.value()->IsOwned(b)) owned += run;
      b += run;
    }
    j["owned_bytes"] = std::min(owned * engine::kBlockBytes, d.capacity_bytes);
    disks.push_back(std::move(j));
  }
  info["disks"] = std::move(disks);
  return info;
}

std::string RenderCloneInfoText(const Json& info) {
  std::string out;
  out += fmt::format("clone:       {} ({})\n", info["path"].get<std::string>(),
                     info["display_name"].get<std::string>());
  out += fmt::format("created:     {} from {}\n", info["created_utc"].get<std::string>(),
                     info["source"].get<std::string>());
  if (info["mounted"].get<bool>()) {
    out += fmt::format("mounted:     yes, at {} (pid {})\n",
                       info["mount"]["mountpoint"].get<std::string>(),
                       info["mount"]["pid"].get<long>());
  } else {
    out += "mounted:     no\n";
  }
  for (const Json& d : info["disks"]) {
    out += fmt::format("disk {}:  {} ({} bytes)\n", d["name"].get<std::string>(),
                       HumanBytes(d["capacity_bytes"].get<uint64_t>()),
                       d["capacity_bytes"].get<uint64_t>());
    out += fmt::format("  parent:    {} ({})\n", d["parent_path"].get<std::string>(),
                       d["parent_ok"].get<bool>() ? "unchanged"
                                                  : d["parent_problem"].get<std::string>());
    out += fmt::format("  written:   {} in the clone, {} on disk\n",
                       HumanBytes(d["owned_bytes"].get<uint64_t>()),
                       HumanBytes(d["delta_used_bytes"].get<uint64_t>()));
  }
  return out;
}

}  // namespace tools
