// SPDX-License-Identifier: Apache-2.0
#pragma once

// A cheap identity of a parent disk chain: what changes when any file of the chain
// changes, read without touching its data (so taking it is O(1) in the disk size). For
// every file of every link (descriptors and extent files): its path, size, modification
// time and inode; for every link: its CID, and an XXH3 hash of its descriptor text and of
// the first sector of each sparse extent (the header, which records the grain
// directory). A linked clone records this at creation and compares it at every mount.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/storage.h"
#include "fs/engine/delta_header.h"
#include "vmdk/disk.h"

namespace engine {

struct FingerprintedFile {
  std::string path;
  uint64_t size_bytes = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;
  std::string cid;          // links only: the descriptor's CID ("" for extent files)
  uint64_t head_hash = 0;   // XXH3-64 of the descriptor text / first 512 bytes

  bool operator==(const FingerprintedFile&) const = default;
};

struct ParentFingerprint {
  std::vector<FingerprintedFile> files;  // top link first, each link then its extents
  bool operator==(const ParentFingerprint&) const = default;
};

common::Result<ParentFingerprint> FingerprintChain(common::Storage& storage,
                                                   const vmdk::Disk& disk);

// "" when they match; otherwise one sentence naming the first file that differs and
// what changed ("base.vmdk: modification time changed (...)", "... is missing").
std::string DescribeChange(const ParentFingerprint& recorded, const ParentFingerprint& current);

nlohmann::ordered_json ToJson(const ParentFingerprint& fingerprint);
// XXH3-128 of the fingerprint's JSON text: what a delta header records of its parent.
Fingerprint Digest(const ParentFingerprint& fingerprint);
common::Result<ParentFingerprint> FingerprintFromJson(const nlohmann::ordered_json& json);

}  // namespace engine
