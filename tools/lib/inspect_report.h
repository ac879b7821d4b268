// SPDX-License-Identifier: Apache-2.0
#pragma once

// What `clonectl inspect` reports about a disk: subformat, capacity, CID chain, extents
// and allocation, as JSON (the --json output and the source of the text form).
//
// Schema: {file, create_type, capacity_bytes, cid, parent_cid, allocated_bytes,
//          zero_bytes, chain: [{file, create_type, cid, parent_cid,
//          parent_file_name_hint, capacity_bytes, data_bytes, zero_bytes, warnings,
//          extents: [{access, type, file, path, start_bytes, size_bytes,
//                     file_offset_bytes, format: {...}}]}]}
// chain[0] is the file inspected; allocated_bytes counts the merged view's data.

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "vmdk/disk.h"

namespace tools {

common::Result<nlohmann::ordered_json> InspectDisk(const vmdk::Disk& disk);
std::string RenderInspectText(const nlohmann::ordered_json& report);

}  // namespace tools
