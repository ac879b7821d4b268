// SPDX-License-Identifier: Apache-2.0
#pragma once

// Whole-file helpers for the small files clonectl writes beside disks (.vmx, nvram,
// snapshot copies of them) and for removing a directory it built.

#include <cstdint>
#include <span>
#include <string>

#include "common/storage.h"

namespace tools {

// A new file at `path` (EEXIST if it exists) holding `contents`, durable, with permission
// bits `mode`. The caller syncs the directory.
common::Status WriteNewFile(common::Storage& storage, const std::string& path,
                            std::span<const std::byte> contents, uint32_t mode);

// Copies `from` into a new file `to` with the same permission bits plus owner
// read-write (the hypervisor rewrites .vmx and nvram files). Files over `max_bytes` are
// refused (EINVAL naming the file): these are read whole.
common::Status CopySmallFile(common::Storage& storage, const std::string& from,
                             const std::string& to, uint64_t max_bytes);

// Removes a directory tree of files and directories; best effort.
void RemoveTree(common::Storage& storage, const std::string& dir);

}  // namespace tools
