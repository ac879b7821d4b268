// SPDX-License-Identifier: Apache-2.0
#include <cstdio>

#include "tools/clonectl/commands.h"
#include "tools/lib/vm_tree.h"

namespace clonectl {

int RunTree(const TreeArgs& args) {
  auto tree = tools::BuildVmTree(common::PosixStorage(), args.vm);
  if (!tree) return Fail(tree.error().message());
  std::string text = tools::RenderVmTree(tree.value(), args.ascii);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace clonectl
