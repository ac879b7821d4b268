// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/parent_vm.h"

#include <cerrno>

#include <fmt/format.h>

namespace tools {

ParentVmState LookUpParentVm(common::Storage& storage, const engine::ParentVm& parent) {
  ParentVmState state;
  auto config = engine::LoadCloneConfig(storage, parent.path);
  if (!config) {
    state.problem = config.error().code() == ENOENT ? "missing: moved or deleted without clonectl"
                                                    : config.error().message();
    return state;
  }
  if (config.value().vm_id != parent.vm_id) {
    state.problem = "the directory now holds another VM";
  } else if (config.value().FindSnapshot(parent.snapshot) == nullptr) {
    state.problem = fmt::format("it has no snapshot point '{}' any more", parent.snapshot);
  }
  state.config = std::move(config).value();
  return state;
}

}  // namespace tools
