// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/vm_tree.h"

#include <filesystem>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "fs/engine/clone_config.h"
#include "tools/lib/dependents.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/parent_vm.h"

namespace tools {
namespace {

using common::Result;

constexpr const char* kYouAreHere = "(you are here)";
constexpr const char* kCurrentState = "(current state)";

// Which snapshot point's layer is `layer_id` or, failing that, the nearest layer below
// it that one froze: the snapshot point a state grew from. -1 when none (the state grew
// from what the VM was cloned from). Follows the VM's own layers only, at most once each.
int NearestSnapshot(const engine::CloneConfig& config, std::string layer_id) {
  const engine::CloneDisk& disk = config.disks.front();
  const std::string root = disk.root_id();
  for (size_t steps = 0; steps <= disk.frozen.size() && layer_id != root; ++steps) {
    for (size_t s = 0; s < config.snapshots.size(); ++s) {
      if (config.snapshots[s].layer_ids.front() == layer_id) return static_cast<int>(s);
    }
    const engine::FrozenLayer* layer = nullptr;
    for (const engine::FrozenLayer& l : disk.frozen) {
      if (l.layer_id == layer_id) layer = &l;
    }
    if (layer == nullptr) break;
    layer_id = layer->parent_id;
  }
  return -1;
}

// The snapshot point a snapshot point nests under (-1: the top level).
int ParentSnapshot(const engine::CloneConfig& config, const engine::SnapshotPoint& snapshot) {
  const engine::CloneDisk& disk = config.disks.front();
  for (const engine::FrozenLayer& l : disk.frozen) {
    if (l.layer_id == snapshot.layer_ids.front()) return NearestSnapshot(config, l.parent_id);
  }
  return -1;  // the base or an inherited layer: nothing of this VM's is below it
}

// The VM's directory, and its display name when that is not the directory's name.
std::string VmLabel(const std::string& dir, const engine::CloneConfig& config) {
  if (config.display_name == std::filesystem::path(dir).filename().string()) return dir;
  return fmt::format("{} \"{}\"", dir, config.display_name);
}

class TreeBuilder {
 public:
  explicit TreeBuilder(common::Storage& storage) : storage_(storage) {}

  // The children of a VM's node: its snapshot points (nested), their clones, and where
  // its current state is.
  std::vector<TreeNode> VmChildren(const std::string& dir, const engine::CloneConfig& config,
                                   bool is_root) {
    seen_.insert(config.vm_id);
    const std::string meta = dir + "/" + engine::kMetadataDirName;
    std::vector<TreeNode> top;
    std::vector<Dependent> dependents;
    if (auto list = ListDependents(storage_, meta, config.vm_id)) {
      dependents = std::move(list).value();
    } else {
      top.push_back({"dependents: unreadable (" + list.error().message() + ")", {}});
    }
    if (config.disks.empty()) return top;  // nothing to nest by (clone.json needs one)

    const size_t n = config.snapshots.size();
    std::vector<int> parent(n);
    for (size_t s = 0; s < n; ++s) parent[s] = ParentSnapshot(config, config.snapshots[s]);
    const int here = NearestSnapshot(config, config.disks.front().parent_layer_id);
    const char* marker = is_root ? kYouAreHere : kCurrentState;

    // Clones of a snapshot point this VM does not have any more: shown at the top level.
    for (const Dependent& d : dependents) {
      if (config.FindSnapshot(d.record.snapshot) == nullptr) {
        TreeNode node = CloneNode(d);
        node.label += fmt::format(" (based on snapshot point '{}', which is not in this VM)",
                                  d.record.snapshot);
        top.push_back(std::move(node));
      }
    }
    for (size_t s = 0; s < n; ++s) {
      if (parent[s] == -1) top.push_back(SnapshotNode(config, dependents, parent, here, marker, s));
    }
    // A VM without snapshot points has no state to place but the obvious one: shown
    // only for the VM asked about.
    if (here == -1 && (is_root || n > 0)) top.push_back({marker, {}});
    return top;
  }

 private:
  TreeNode SnapshotNode(const engine::CloneConfig& config, const std::vector<Dependent>& dependents,
                        const std::vector<int>& parent, int here, const char* marker, size_t s) {
    const engine::SnapshotPoint& snapshot = config.snapshots[s];
    TreeNode node{fmt::format("snapshot {} ({})", snapshot.name, snapshot.created_utc), {}};
    for (const Dependent& d : dependents) {
      if (d.record.snapshot == snapshot.name) node.children.push_back(CloneNode(d));
    }
    for (size_t c = 0; c < config.snapshots.size(); ++c) {
      if (parent[c] == static_cast<int>(s)) {
        node.children.push_back(SnapshotNode(config, dependents, parent, here, marker, c));
      }
    }
    if (here == static_cast<int>(s)) node.children.push_back({marker, {}});
    return node;
  }

  TreeNode CloneNode(const Dependent& d) {
    if (!d.problem.empty()) {
      return {fmt::format("clone {} ({})", d.record.path, d.problem), {}};
    }
    if (seen_.count(d.record.vm_id)) {
      return {
          fmt::format("clone {} (already shown above: its records form a cycle)", d.record.path),
          {}};
    }
    auto config = engine::LoadCloneConfig(storage_, d.record.path);
    if (!config) return {fmt::format("clone {} ({})", d.record.path, config.error().message()), {}};
    TreeNode node{"clone " + VmLabel(d.record.path, config.value()), {}};
    node.children = VmChildren(d.record.path, config.value(), /*is_root=*/false);
    return node;
  }

  common::Storage& storage_;
  std::set<std::string> seen_;  // vm_ids already shown
};

// "parent: DIR (snapshot NAME)" for each VM up the chain, nearest first.
std::vector<std::string> ParentLines(common::Storage& storage, const engine::CloneConfig& config) {
  std::vector<std::string> lines;
  std::set<std::string> seen = {config.vm_id};
  std::optional<engine::ParentVm> parent = config.parent;
  while (parent) {
    std::string line = fmt::format("parent: {} (snapshot {})", parent->path, parent->snapshot);
    if (seen.count(parent->vm_id)) {
      lines.push_back(line + ": already shown (the parent records form a cycle)");
      break;
    }
    seen.insert(parent->vm_id);
    ParentVmState state = LookUpParentVm(storage, *parent);
    if (!state.problem.empty()) {
      lines.push_back(line + ": " + state.problem);
      break;
    }
    lines.push_back(std::move(line));
    parent = state.config->parent;
  }
  return lines;
}

void Render(const TreeNode& node, const std::string& prefix, bool ascii, std::string& out) {
  for (size_t i = 0; i < node.children.size(); ++i) {
    const bool last = i + 1 == node.children.size();
    const char* branch = ascii ? (last ? "`-- " : "|-- ") : (last ? "└── " : "├── ");
    const char* below = ascii ? (last ? "    " : "|   ") : (last ? "    " : "│   ");
    out += prefix + branch + node.children[i].label + "\n";
    Render(node.children[i], prefix + below, ascii, out);
  }
}

}  // namespace

Result<VmTree> BuildVmTree(common::Storage& storage, const std::string& vm_path) {
  BOOST_OUTCOME_TRY(dir, ManagedVmDirectory(storage, vm_path));
  BOOST_OUTCOME_TRY(config, engine::LoadCloneConfig(storage, dir));
  VmTree tree;
  tree.above = ParentLines(storage, config);
  for (const engine::CloneDisk& disk : config.disks) {
    tree.above.push_back(config.disks.size() == 1
                             ? "base: " + disk.parent_path
                             : fmt::format("base: {} (disk {})", disk.parent_path, disk.name));
  }
  tree.root.label = VmLabel(dir, config);
  tree.root.children = TreeBuilder(storage).VmChildren(dir, config, /*is_root=*/true);
  return tree;
}

std::string RenderVmTree(const VmTree& tree, bool ascii) {
  std::string out;
  for (const std::string& line : tree.above) out += line + "\n";
  out += tree.root.label + "\n";
  Render(tree.root, "", ascii, out);
  return out;
}

}  // namespace tools
