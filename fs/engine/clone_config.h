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

// Format 2 added snapshot layers, snapshot points and the parent VM; format 1 files (a
// single delta layer over a VMDK) are read as format 2 with none of those.
inline constexpr int kCloneConfigFormat = 2;
inline constexpr const char* kMetadataDirName = ".clonefs";
inline constexpr const char* kCloneConfigName = "clone.json";
// Where snapshot points keep the .vmx and nvram as they were, inside the metadata dir.
inline constexpr const char* kSnapshotsDirName = "snapshots";

// A frozen (immutable) delta layer of a disk's chain: the blocks the VM wrote between two
// snapshot points, with per-block checksums beside it (layer_checksums.h).
struct FrozenLayer {
  std::string layer_id;   // 32 hex digits, as in its header
  std::string parent_id;  // the layer below it; "" for the base (the parent VMDK chain)
  // This VM's own layers: names relative to the metadata directory. Layers inherited
  // from the VM this one was cloned from: absolute paths into that VM's directory.
  std::string delta_file;
  std::string map_file;
  std::string sums_file;
  // The header's generation when frozen (a merge into the layer bumps it): a layer file
  // changed behind clonefs's back is noticed before it is served.
  uint64_t generation = 0;

  bool operator==(const FrozenLayer&) const = default;
};

struct CloneDisk {
  std::string name;            // D: presented as D.vmdk and D-flat.vmdk
  uint64_t capacity_bytes = 0;
  std::string parent_path;     // absolute path of the base VMDK (top of its chain)
  ParentFingerprint parent_fingerprint;
  // Layers of the VM this one was cloned from, bottom to top: the chain of the snapshot
  // point the clone is based on. Never changed by this VM.
  std::vector<FrozenLayer> inherited;
  // This VM's own frozen layers: a tree (snapshots taken, reverted to, taken again),
  // rooted at the top inherited layer (or the base when none).
  std::vector<FrozenLayer> frozen;
  // The writable top layer.
  std::string layer_id;        // 32 hex digits, as in the delta header
  std::string parent_layer_id; // the layer below it: "" for the base, or a layer's id
  std::string delta_file;      // relative to the metadata directory
  std::string map_file;

  bool operator==(const CloneDisk&) const = default;

  // The id of the root of this VM's own layers: the top inherited layer, "" for the base.
  std::string root_id() const { return inherited.empty() ? "" : inherited.back().layer_id; }
  // The frozen layers under a layer whose parent is `parent_id`, bottom to top
  // (inherited first). EINVAL naming the missing id if the tree is broken.
  common::Result<std::vector<FrozenLayer>> ChainBelow(const std::string& parent_id) const;
  // The frozen layer (own or inherited) with this id, or nullptr.
  const FrozenLayer* FindLayer(const std::string& layer_id) const;
};

// A named, immutable record of a VM's state: per disk the layer frozen at that moment
// (its chain is that layer and everything below it), and the .vmx as it was.
struct SnapshotPoint {
  std::string name;
  std::string created_utc;
  std::optional<std::string> vmx_file;    // relative to the metadata directory
  std::optional<std::string> nvram_file;  // the nvram as it was, likewise (if any)
  std::vector<std::string> layer_ids;   // per disk, in `disks` order ("" = the base)

  bool operator==(const SnapshotPoint&) const = default;
};

// Where a clone of a managed VM came from.
struct ParentVm {
  std::string path;      // the parent VM's directory, absolute
  std::string vm_id;     // its vm_id
  std::string snapshot;  // the snapshot point the clone is based on

  bool operator==(const ParentVm&) const = default;
};

struct CloneConfig {
  int format = kCloneConfigFormat;
  std::string vm_id;              // 32 hex digits, random: this VM in its parent's records
  std::string display_name;
  std::string created_utc;        // ISO 8601
  std::string source;             // what the clone was made from, as given
  std::optional<std::string> vmx; // the clone's .vmx file name, if it has one
  std::vector<CloneDisk> disks;
  std::optional<ParentVm> parent;        // set for a clone of a managed VM
  std::vector<SnapshotPoint> snapshots;  // oldest first
  // Renames inside the VM directory (from, to) that a committed change still has to do:
  // a revert restores the .vmx and nvram this way, after its commit. Whoever locks the
  // VM next (a mount, a clonectl change) finishes them: FinishPendingRenames.
  std::vector<std::pair<std::string, std::string>> pending_renames;

  bool operator==(const CloneConfig&) const = default;

  const SnapshotPoint* FindSnapshot(std::string_view name) const;
};

// Parses clone.json text (non-throwing). EINVAL naming the field for anything missing or
// of the wrong type; ENOTSUP for another format number.
common::Result<CloneConfig> ParseCloneConfig(std::string_view text);
std::string SerializeCloneConfig(const CloneConfig& config);

// Reads and parses CLONE/.clonefs/clone.json; errors name the file ("DIR: not a clone"
// when there is none).
common::Result<CloneConfig> LoadCloneConfig(common::Storage& storage,
                                            const std::string& clone_dir);

// A layer file's path: names in the metadata directory `meta`, absolute paths as they are.
std::string LayerFilePath(const std::string& meta, const std::string& file);

// Does `config`'s pending renames (a source already gone was renamed before a crash),
// then commits clone.json without them. Call with the VM lock held.
common::Status FinishPendingRenames(common::Storage& storage, const std::string& vm_dir,
                                    CloneConfig& config);

// Replaces `path` with `contents` atomically and durably.
common::Status WriteFileAtomically(common::Storage& storage, const std::string& path,
                                   std::string_view contents);

}  // namespace engine
