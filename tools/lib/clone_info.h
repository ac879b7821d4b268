// SPDX-License-Identifier: Apache-2.0
#pragma once

// What `clonectl info VM [--json]` reports about a managed VM (docs/snapshots.md,
// "clonectl info"): its disks with their whole layer chains (disk_layers.h), the VM it
// was cloned from, its snapshot points, the clones that depend on it, the space it uses,
// and whether it is mounted or busy. Reads only; needs no lock.
//
// Schema: {path, display_name, created_utc, source, vm_id, vmx,
//          mounted, mount: {mountpoint, pid} (when mounted),
//          busy: {operation, pid} (when a clonectl command holds the VM),
//          parent: null | {path, snapshot, vm_id, ok, problem},
//          disks: [{name, capacity_bytes, parent_path, parent_ok, parent_problem,
//                   delta_used_bytes, owned_bytes (the top layer's),
//                   chain, other_layers, space_used_bytes, inherited_bytes}],
//          snapshots: [{name, created_utc, current, dependents: [path]}],
//          dependents: [{path, snapshot, created_utc, ok, problem}],
//          space_used_bytes, inherited_bytes}

#include <nlohmann/json.hpp>

#include "common/storage.h"
#include "fs/engine/clone_config.h"

namespace tools {

// `vm_path`: the VM's directory or its .vmx. Errors only when there is nothing to report
// on: "DIR: not a clone", an unreadable clone.json. Broken layers, a missing parent or
// dependent are reported in the result.
common::Result<nlohmann::ordered_json> CloneInfo(common::Storage& storage,
                                                 const std::string& vm_path);
std::string RenderCloneInfoText(const nlohmann::ordered_json& info);

// Reads and parses CLONE/.clonefs/clone.json; errors name the file.
common::Result<engine::CloneConfig> LoadCloneConfig(common::Storage& storage,
                                                    const std::string& clone_dir);

}  // namespace tools
