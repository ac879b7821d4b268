// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/disk_layers.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "fs/engine/delta_layer.h"
#include "fs/engine/disk_chain.h"

namespace tools {
namespace {

using Json = nlohmann::ordered_json;

// Half-written headers last microseconds (one memcpy and an msync); five reads 20 ms
// apart tell that from damage.
constexpr int kTopAttemptsWhileMounted = 5;
constexpr auto kTopRetryDelay = std::chrono::milliseconds(20);

uint64_t OwnedBytes(const engine::DeltaLayer& layer) {
  return std::min(layer.owned_blocks() * engine::kBlockBytes, layer.capacity_bytes());
}

// The VM directory a layer file lives in: <vm>/.clonefs/<file>.
std::string VmOfLayerFile(const std::string& path) {
  return std::filesystem::path(path).parent_path().parent_path().string();
}

// The snapshot point of `config` that froze layer `id` of disk `disk_index`, or null.
Json SnapshotOf(const engine::CloneConfig& config, size_t disk_index, const std::string& id) {
  for (const engine::SnapshotPoint& snapshot : config.snapshots) {
    if (snapshot.layer_ids[disk_index] == id) return snapshot.name;
  }
  return nullptr;
}

Json Describe(common::Storage& storage, const std::string& meta, const engine::CloneConfig& config,
              size_t disk_index, const engine::FrozenLayer& record, bool inherited) {
  Json j;
  j["kind"] = "frozen";
  j["layer_id"] = record.layer_id;
  j["origin"] = inherited ? "inherited" : "own";
  j["vm"] = VmOfLayerFile(engine::LayerFilePath(meta, record.map_file));
  j["snapshot"] = inherited ? Json(nullptr) : SnapshotOf(config, disk_index, record.layer_id);
  j["delta_file"] = engine::LayerFilePath(meta, record.delta_file);
  j["map_file"] = engine::LayerFilePath(meta, record.map_file);
  j["sums_file"] = engine::LayerFilePath(meta, record.sums_file);
  auto layer = engine::OpenFrozenLayer(storage, meta, record);
  j["owned_bytes"] = layer ? Json(OwnedBytes(*layer.value())) : Json(nullptr);
  j["host_bytes"] =
      HostBytes(storage, meta, {record.delta_file, record.map_file, record.sums_file});
  j["ok"] = layer.has_value();
  j["problem"] = layer ? Json(nullptr) : Json(layer.error().message());
  return j;
}

}  // namespace

common::Result<std::unique_ptr<engine::DeltaLayer>> OpenTopLayerToRead(
    common::Storage& storage, const std::string& meta, const engine::CloneDisk& disk,
    bool mounted) {
  for (int attempt = 1;; ++attempt) {
    auto top = engine::OpenTopLayer(storage, meta, disk, /*writable=*/false);
    if (top || !mounted || attempt >= kTopAttemptsWhileMounted) return top;
    std::this_thread::sleep_for(kTopRetryDelay);
  }
}

uint64_t HostBytes(common::Storage& storage, const std::string& meta,
                   std::initializer_list<std::string> files) {
  uint64_t bytes = 0;
  for (const std::string& file : files) {
    if (auto st = storage.Stat(engine::LayerFilePath(meta, file))) {
      bytes += st.value().allocated_bytes;
    }
  }
  return bytes;
}

Json DescribeDiskLayers(common::Storage& storage, const std::string& vm_dir,
                        const engine::CloneConfig& config, size_t disk_index, bool mounted) {
  const engine::CloneDisk& disk = config.disks[disk_index];
  const std::string meta = vm_dir + "/" + engine::kMetadataDirName;
  Json chain = Json::array();
  {
    auto base = engine::OpenBaseChain(storage, disk);
    chain.push_back({{"kind", "base"},
                     {"path", disk.parent_path},
                     {"ok", base.has_value()},
                     {"problem", base ? Json(nullptr) : Json(base.error().message())}});
  }
  uint64_t own_bytes = 0;
  uint64_t inherited_bytes = 0;
  std::set<std::string> in_chain;
  // clone.json was checked when parsed: the top's chain resolves.
  auto below = disk.ChainBelow(disk.parent_layer_id);
  for (const engine::FrozenLayer& record : below ? below.value() : disk.inherited) {
    const bool inherited =
        std::any_of(disk.inherited.begin(), disk.inherited.end(),
                    [&](const engine::FrozenLayer& l) { return l.layer_id == record.layer_id; });
    Json j = Describe(storage, meta, config, disk_index, record, inherited);
    (inherited ? inherited_bytes : own_bytes) += j["host_bytes"].get<uint64_t>();
    in_chain.insert(record.layer_id);
    chain.push_back(std::move(j));
  }
  {
    Json top;
    top["kind"] = "top";
    top["layer_id"] = disk.layer_id;
    top["origin"] = "own";
    top["vm"] = vm_dir;
    top["snapshot"] = nullptr;
    const engine::DeltaPaths paths = engine::TopLayerPaths(meta, disk);
    top["delta_file"] = paths.data;
    top["map_file"] = paths.map;
    auto layer = OpenTopLayerToRead(storage, meta, disk, mounted);
    top["owned_bytes"] = layer ? Json(OwnedBytes(*layer.value())) : Json(nullptr);
    top["host_bytes"] = HostBytes(storage, meta, {disk.delta_file, disk.map_file});
    top["ok"] = layer.has_value();
    top["problem"] = layer ? Json(nullptr) : Json(layer.error().message());
    own_bytes += top["host_bytes"].get<uint64_t>();
    chain.push_back(std::move(top));
  }
  Json others = Json::array();
  for (const engine::FrozenLayer& record : disk.frozen) {
    if (in_chain.count(record.layer_id)) continue;
    Json j = Describe(storage, meta, config, disk_index, record, false);
    own_bytes += j["host_bytes"].get<uint64_t>();
    others.push_back(std::move(j));
  }
  Json out;
  out["chain"] = std::move(chain);
  out["other_layers"] = std::move(others);
  out["space_used_bytes"] = own_bytes;
  out["inherited_bytes"] = inherited_bytes;
  return out;
}

}  // namespace tools
