// SPDX-License-Identifier: Apache-2.0
#pragma once

// One disk's layers as `clonectl info` reports them (docs/snapshots.md, "clonectl info"):
// the chain the disk reads now, bottom to top (the base VMDK chain, inherited layers, own
// frozen layers, the top), and the VM's own frozen layers on other branches (kept for
// snapshot points the current state did not grow from). Each layer says whether it is
// sound, how much of the disk it holds and how much host space its files take.
//
// Reads headers and bitmaps only; needs no lock (a mounted VM's top layer is read as the
// daemon last persisted it).

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/storage.h"
#include "fs/engine/clone_config.h"
#include "fs/engine/delta_layer.h"

namespace tools {

// Chain entries, bottom to top:
//   {"kind": "base", "path", "ok", "problem"}
//   {"kind": "frozen" | "top", "layer_id", "origin": "inherited" | "own",
//    "vm": the directory of the VM whose layer it is, "snapshot": the snapshot point of
//    this VM that froze it (own frozen layers; else null), "delta_file", "map_file",
//    "sums_file" (frozen only; all absolute), "owned_bytes" (the blocks it holds; null
//    when unreadable), "host_bytes" (allocated space of its files), "ok", "problem"}
// and {"chain": [...], "other_layers": [own frozen layers not in the chain, same form],
//      "space_used_bytes": host bytes of this VM's own layers (top and own frozen),
//      "inherited_bytes": host bytes of the inherited layers}.
// `mounted`: a daemon serves the VM (see OpenTopLayerToRead).
nlohmann::ordered_json DescribeDiskLayers(common::Storage& storage, const std::string& vm_dir,
                                          const engine::CloneConfig& config, size_t disk_index,
                                          bool mounted);

// The top layer, read-only, checked against the disk's record. A running daemon rewrites
// the header in place at every flush, so a read can meet one half-written (its checksum
// fails): while `mounted`, a failure is read again a few times, 20 ms apart, before it is
// believed.
common::Result<std::unique_ptr<engine::DeltaLayer>> OpenTopLayerToRead(
    common::Storage& storage, const std::string& meta, const engine::CloneDisk& disk, bool mounted);

// The space a layer's files take on the host (allocated bytes; missing files count 0).
uint64_t HostBytes(common::Storage& storage, const std::string& meta,
                   std::initializer_list<std::string> files);

}  // namespace tools
