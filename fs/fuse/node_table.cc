// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/node_table.h"

#include <vector>

namespace clonefs {

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir == "." ? name : dir + "/" + name;
}

NodeTable::NodeTable() {
  Entry root;
  root.node = Node{NodeKind::kPassthrough, ".", -1};
  root.presented = true;  // the root is never forgotten
  nodes_.emplace(FUSE_ROOT_ID, root);
  by_path_.emplace(".", FUSE_ROOT_ID);
}

fuse_ino_t NodeTable::AddPresented(const Node& node) {
  std::lock_guard lock(mutex_);
  fuse_ino_t ino = next_ino_++;
  nodes_.emplace(ino, Entry{node, 0, true});
  return ino;
}

fuse_ino_t NodeTable::LookupPassthrough(const std::string& path) {
  std::lock_guard lock(mutex_);
  auto found = by_path_.find(path);
  if (found != by_path_.end()) {
    ++nodes_.at(found->second).lookups;
    return found->second;
  }
  fuse_ino_t ino = next_ino_++;
  nodes_.emplace(ino, Entry{Node{NodeKind::kPassthrough, path, -1}, 1, false});
  by_path_.emplace(path, ino);
  return ino;
}

void NodeTable::Forget(fuse_ino_t ino, uint64_t count) {
  std::lock_guard lock(mutex_);
  auto found = nodes_.find(ino);
  if (found == nodes_.end() || found->second.presented) return;
  Entry& entry = found->second;
  entry.lookups = count >= entry.lookups ? 0 : entry.lookups - count;
  if (entry.lookups > 0) return;
  auto by_path = by_path_.find(entry.node.path);
  if (by_path != by_path_.end() && by_path->second == ino) by_path_.erase(by_path);
  nodes_.erase(found);
}

std::optional<Node> NodeTable::Get(fuse_ino_t ino) const {
  std::lock_guard lock(mutex_);
  auto found = nodes_.find(ino);
  if (found == nodes_.end()) return std::nullopt;
  return found->second.node;
}

void NodeTable::Unlinked(const std::string& path) {
  std::lock_guard lock(mutex_);
  by_path_.erase(path);
}

void NodeTable::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mutex_);
  // Whatever the target path named before is gone from the namespace (replaced).
  if (auto replaced = by_path_.find(to); replaced != by_path_.end()) by_path_.erase(replaced);
  std::vector<std::pair<std::string, fuse_ino_t>> moved;
  for (auto& [path, ino] : by_path_) {
    if (path == from || path.starts_with(from + "/")) moved.emplace_back(path, ino);
  }
  for (auto& [path, ino] : moved) {
    by_path_.erase(path);
    std::string new_path = to + path.substr(from.size());
    nodes_.at(ino).node.path = new_path;
    by_path_[new_path] = ino;
  }
}

}  // namespace clonefs
