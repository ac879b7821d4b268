// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/disk_chain.h"

#include <algorithm>
#include <cerrno>

#include "fs/engine/parent_fingerprint.h"

namespace engine {
namespace {

using common::Error;
using common::Result;
using common::Status;

// Compares what stat alone tells of each recorded parent file, before the chain is
// opened: a missing or replaced file is named as such, not as whatever parse error
// opening it would give.
Status CheckRecordedFiles(common::Storage& storage, const ParentFingerprint& recorded) {
  for (const FingerprintedFile& was : recorded.files) {
    auto now = storage.Stat(was.path);
    if (!now) {
      if (now.error().code() == ENOENT) {
        return Error(ENOENT, "{}: the clone's parent is missing", was.path);
      }
      return now.error();
    }
    if (now.value().size_bytes != was.size_bytes) {
      return Error(ESTALE, "{}: the clone's parent was modified: size changed from {} to {} bytes",
                   was.path, was.size_bytes, now.value().size_bytes);
    }
    if (now.value().inode != was.inode) {
      return Error(ESTALE, "{}: the clone's parent was replaced by another file (inode {} is now {})",
                   was.path, was.inode, now.value().inode);
    }
  }
  return Status::Ok();
}

// Whether a header's ids and geometry are those its record and disk say.
Status CheckHeader(const DeltaHeader& header, const CloneDisk& disk, const std::string& layer_id,
                   const std::string& parent_id, const std::string& map_path) {
  if (ToHex(header.layer_id) != layer_id) {
    return Error(EINVAL, "{}: layer id {} does not match clone.json ({})", map_path,
                 ToHex(header.layer_id), layer_id);
  }
  if (LayerIdText(header.parent_layer_id) != parent_id) {
    return Error(EINVAL, "{}: the layer below it is {}, clone.json says {}", map_path,
                 LayerIdText(header.parent_layer_id), parent_id.empty() ? "the base" : parent_id);
  }
  if (header.parent_fingerprint != Digest(disk.parent_fingerprint)) {
    return Error(EINVAL, "{}: recorded parent fingerprint does not match clone.json", map_path);
  }
  if (header.capacity_bytes != disk.capacity_bytes) {
    return Error(EINVAL, "{}: capacity {} bytes does not match clone.json ({} bytes)", map_path,
                 header.capacity_bytes, disk.capacity_bytes);
  }
  return Status::Ok();
}

}  // namespace

std::string LayerIdText(const LayerId& id) {
  return std::all_of(id.begin(), id.end(), [](uint8_t b) { return b == 0; }) ? "" : ToHex(id);
}

Result<std::unique_ptr<vmdk::Disk>> OpenBaseChain(common::Storage& storage,
                                                  const CloneDisk& disk) {
  BOOST_OUTCOME_TRYV(CheckRecordedFiles(storage, disk.parent_fingerprint));
  BOOST_OUTCOME_TRY(chain, vmdk::Disk::Open(storage, disk.parent_path));
  BOOST_OUTCOME_TRY(fingerprint, FingerprintChain(storage, *chain));
  if (std::string change = DescribeChange(disk.parent_fingerprint, fingerprint);
      !change.empty()) {
    return Error(ESTALE, "{} (the clone's parent was modified)", change);
  }
  return chain;
}

Result<std::unique_ptr<DeltaLayer>> OpenFrozenLayer(common::Storage& storage,
                                                    const std::string& meta,
                                                    const FrozenLayer& record) {
  const DeltaPaths paths{LayerFilePath(meta, record.delta_file),
                         LayerFilePath(meta, record.map_file)};
  for (const std::string& path : {paths.map, paths.data}) {
    if (auto info = storage.Stat(path); !info && info.error().code() == ENOENT) {
      return Error(ENOENT, "{}: a snapshot layer of the chain is missing", path);
    }
  }
  // The daemon reads a packed layer like a shared parent, but with a wider read-around:
  // its blocks lie side by side, so what a miss fetches around it is the layer's next
  // blocks (docs/delta-format.md). An older sparse frozen layer holds scattered blocks
  // among holes, where read-around would fetch holes at the cost of a synchronous fadvise
  // per read: it is read through the page cache alone.
  common::Storage* layer_storage = &storage;
  if (&storage == &common::SharedParentStorage()) {
    BOOST_OUTCOME_TRY(peek, DeltaLayer::ReadHeader(storage, paths.map));
    layer_storage = peek.packed ? &common::FrozenLayerStorage() : &common::PosixStorage();
  }
  BOOST_OUTCOME_TRY(layer, DeltaLayer::Open(*layer_storage, paths, /*writable=*/false));
  const DeltaHeader header = layer->header();
  if (ToHex(header.layer_id) != record.layer_id ||
      LayerIdText(header.parent_layer_id) != record.parent_id) {
    return Error(ESTALE, "{}: the snapshot layer was replaced (its ids differ from clone.json)",
                 paths.map);
  }
  if (header.generation != record.generation) {
    return Error(ESTALE, "{}: the snapshot layer was modified (generation {}, recorded {})",
                 paths.map, header.generation, record.generation);
  }
  return layer;
}

Result<std::unique_ptr<LayerStack>> OpenLowerChain(common::Storage& storage,
                                                   const std::string& meta,
                                                   const CloneDisk& disk,
                                                   const std::string& parent_id) {
  BOOST_OUTCOME_TRY(records, disk.ChainBelow(parent_id));
  BOOST_OUTCOME_TRY(base, OpenBaseChain(storage, disk));
  std::vector<std::unique_ptr<DeltaLayer>> frozen;
  for (const FrozenLayer& record : records) {
    BOOST_OUTCOME_TRY(layer, OpenFrozenLayer(storage, meta, record));
    if (layer->capacity_bytes() != disk.capacity_bytes) {
      return Error(EINVAL, "{}: capacity {} bytes does not match clone.json ({} bytes)",
                   LayerFilePath(meta, record.map_file), layer->capacity_bytes(),
                   disk.capacity_bytes);
    }
    frozen.push_back(std::move(layer));
  }
  return LayerStack::Create(std::make_unique<VmdkLowerLayers>(std::move(base)),
                            std::move(frozen));
}

DeltaPaths TopLayerPaths(const std::string& meta, const CloneDisk& disk) {
  return {LayerFilePath(meta, disk.delta_file), LayerFilePath(meta, disk.map_file)};
}

Result<std::unique_ptr<DeltaLayer>> OpenTopLayer(common::Storage& storage,
                                                 const std::string& meta,
                                                 const CloneDisk& disk, bool writable) {
  const DeltaPaths paths = TopLayerPaths(meta, disk);
  BOOST_OUTCOME_TRY(layer, DeltaLayer::Open(storage, paths, writable));
  BOOST_OUTCOME_TRYV(
      CheckHeader(layer->header(), disk, disk.layer_id, disk.parent_layer_id, paths.map));
  return layer;
}

Result<std::unique_ptr<CowDisk>> OpenCloneDisk(common::Storage& storage, const std::string& meta,
                                               const CloneDisk& disk, bool writable) {
  BOOST_OUTCOME_TRY(lower, OpenLowerChain(storage, meta, disk, disk.parent_layer_id));
  BOOST_OUTCOME_TRY(top, OpenTopLayer(storage, meta, disk, writable));
  return CowDisk::Create(std::move(lower), std::move(top));
}

}  // namespace engine
