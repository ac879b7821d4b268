// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonectl snapshots VM [--json]`: a managed VM's snapshot points, oldest first, each
// with its time, the size of what it froze (the blocks its layers hold, and the host
// space they take), and the clones based on it.

#include <string>

#include <nlohmann/json.hpp>

#include "common/storage.h"

namespace tools {

// {"vm": DIR, "snapshots": [{"name", "created_utc", "size_bytes", "host_bytes",
//   "current": bool (the VM's present state grew from it), "dependents": [{"path",
//   "ok", "problem"}]}]}. Reads clone.json and layer headers; needs no lock.
common::Result<nlohmann::ordered_json> ListSnapshots(common::Storage& storage,
                                                     const std::string& vm_path);
std::string RenderSnapshotsText(const nlohmann::ordered_json& list);

}  // namespace tools
