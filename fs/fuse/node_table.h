// SPDX-License-Identifier: Apache-2.0
#pragma once

// The inode numbers the mount hands to the kernel, and what each stands for: the root,
// a passed-through file or directory of the VM directory (by its path relative to the
// VM directory, so renames only rewrite paths), or one of a disk's presented files.
// Lookup counts follow the FUSE protocol: lookup/create add one, forget subtracts, and a
// passed-through node is dropped at zero. Presented nodes live as long as the mount.

#include <fuse_lowlevel.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace clonefs {

enum class NodeKind {
  kPassthrough,  // a file or directory of the VM directory (the root included)
  kDescriptor,   // D.vmdk: a real file in the metadata directory, or in-memory text
  kFlat,         // D-flat.vmdk: the merged virtual disk
};

struct Node {
  NodeKind kind = NodeKind::kPassthrough;
  // kPassthrough: the path relative to the VM directory ("." for the root).
  // kDescriptor: the real file's path relative to the VM directory ("" for in-memory).
  std::string path;
  int disk = -1;  // kDescriptor, kFlat: index into MountedVm::disks()
};

class NodeTable {
 public:
  NodeTable();

  // Presented nodes are added before the mount serves requests; they are never forgotten.
  fuse_ino_t AddPresented(const Node& node);
  // The node for a passed-through path, created on first use; adds one lookup.
  fuse_ino_t LookupPassthrough(const std::string& path);
  void Forget(fuse_ino_t ino, uint64_t count);
  std::optional<Node> Get(fuse_ino_t ino) const;
  // The path no longer names the node it named: a new file created there gets a new
  // inode number (the old node lives on, nameless, until the kernel forgets it).
  void Unlinked(const std::string& path);
  // Every passed-through node at `from` or below it now lives under `to`.
  void Rename(const std::string& from, const std::string& to);

 private:
  struct Entry {
    Node node;
    uint64_t lookups = 0;
    bool presented = false;
  };
  mutable std::mutex mutex_;
  std::unordered_map<fuse_ino_t, Entry> nodes_;
  std::unordered_map<std::string, fuse_ino_t> by_path_;  // passed-through nodes only
  fuse_ino_t next_ino_ = FUSE_ROOT_ID + 1;
};

// "a/b" + "c" -> "a/b/c", with "." as the root.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace clonefs
