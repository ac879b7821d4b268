// SPDX-License-Identifier: Apache-2.0
#pragma once

// The managed VM a clone was made from (clone.json's `parent`), looked up for the reports
// that show where a VM comes from (`clonectl info`, `clonectl tree`). Reading only: the
// clone's own chain does not need its parent VM (its inherited layers are named by path),
// so a parent moved or deleted is a problem to show, not an error.

#include <optional>
#include <string>

#include "common/storage.h"
#include "fs/engine/clone_config.h"

namespace tools {

struct ParentVmState {
  std::optional<engine::CloneConfig> config;  // the parent's clone.json, when it is there
  // "" when the parent is where the clone's record says, holds the snapshot point the
  // clone is based on and is the same VM; else what is wrong.
  std::string problem;
};

ParentVmState LookUpParentVm(common::Storage& storage, const engine::ParentVm& parent);

}  // namespace tools
