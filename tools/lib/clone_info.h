// SPDX-License-Identifier: Apache-2.0
#pragma once

// What `clonectl info CLONE [--json]` reports about a linked clone: its disks, their
// parents (and whether each parent is still the one the clone was made from), the space
// each delta layer uses, and whether the clone is mounted.
//
// Schema: {path, display_name, created_utc, source, mounted, mount: {mountpoint, pid} (when
//          mounted),
//          disks: [{name, capacity_bytes, parent_path, parent_ok, parent_problem,
//                   delta_used_bytes, owned_bytes}]}

#include <nlohmann/json.hpp>

#include "common/storage.h"
#include "fs/engine/clone_config.h"

namespace tools {

common::Result<nlohmann::ordered_json> CloneInfo(common::Storage& storage,
                                                 const std::string& clone_dir);
std::string RenderCloneInfoText(const nlohmann::ordered_json& info);

// Reads and parses CLONE/.clonefs/clone.json; errors name the file.
common::Result<engine::CloneConfig> LoadCloneConfig(common::Storage& storage,
                                                    const std::string& clone_dir);

}  // namespace tools
