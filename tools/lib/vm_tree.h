// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonectl tree VM` (docs/snapshots.md, "clonectl tree"): the clone/snapshot tree of a
// managed VM. The VM's snapshot points nest as its layers do (a snapshot point whose
// layer grew from another's sits under it); the VM's current state sits under the
// snapshot point its top layer grew from; under each snapshot point come the clones made
// from it, each with its own snapshot points and clones, recursively. Above the tree, the
// VMs this one was cloned from, nearest first, and its base VMDKs.
//
// Reads only (clone.json files and dependents records); needs no lock. Missing or moved
// dependents and parents are shown with their problem, never followed; a VM met twice
// (records forming a cycle) is shown once and then named as already shown.

#include <string>
#include <vector>

#include "common/storage.h"

namespace tools {

struct TreeNode {
  std::string label;
  std::vector<TreeNode> children;
};

struct VmTree {
  // "parent: DIR (snapshot NAME)" lines, nearest parent first, then "base: VMDK" lines.
  std::vector<std::string> above;
  TreeNode root;  // labelled with the VM's directory
};

// Errors only for the VM asked about: not managed, unreadable clone.json.
common::Result<VmTree> BuildVmTree(common::Storage& storage, const std::string& vm_path);

// The tree drawn with box-drawing characters ("├── ", "└── ", "│   "), or with `ascii`
// ("|-- ", "`-- ", "|   ").
std::string RenderVmTree(const VmTree& tree, bool ascii = false);

}  // namespace tools
