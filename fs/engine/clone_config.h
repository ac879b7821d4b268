// SPDX-License-Identifier: Apache-2.0
#pragma once

// A linked clone's metadata, `.clonefs/clone.json` in the clone's directory
// (docs/clone-layout.md). Written atomically (temporary file, fsync, rename, fsync of the
// directory), so a crash leaves the old or the new file, never a mix.

#include <optional>
#include <string>
#include <vector>

#include "common/storage.h"
#include "fs/engine/parent_fingerprint.h"

namespace engine {

inline constexpr int kCloneConfigFormat = 1;
inline constexpr const char* kMetadataDirName = ".clonefs";
inline constexpr const char* kCloneConfigName = "clone.json";

struct CloneDisk {
  std::string name;            // D: presented as D.vmdk and D-flat.vmdk
  uint64_t capacity_bytes = 0;
  std::string parent_path;     // absolute path of the parent VMDK (top of its chain)
  ParentFingerprint parent_fingerprint;
  std::string layer_id;        // 32 hex digits, as in the delta header
  std::string delta_file;      // relative to the metadata directory
  std::string map_file;

  bool operator==(const CloneDisk&) const = default;
};

struct CloneConfig {
  int format = kCloneConfigFormat;
  std::string display_name;
  std::string created_utc;        // ISO 8601
  std::string source;             // what the clone was made from, as given
  std::optional<std::string> vmx; // the clone's .vmx file name, if it has one
  std::vector<CloneDisk> disks;

  bool operator==(const CloneConfig&) const = default;
};

// Parses clone.json text (non-throwing). EINVAL naming the field for anything missing or
// of the wrong type; ENOTSUP for another format number.
common::Result<CloneConfig> ParseCloneConfig(std::string_view text);
std::string SerializeCloneConfig(const CloneConfig& config);

// Reads and parses CLONE/.clonefs/clone.json; errors name the file ("DIR: not a clone"
// when there is none).
common::Result<CloneConfig> LoadCloneConfig(common::Storage& storage,
                                            const std::string& clone_dir);

// Replaces `path` with `contents` atomically and durably.
common::Status WriteFileAtomically(common::Storage& storage, const std::string& path,
                                   std::string_view contents);

}  // namespace engine
