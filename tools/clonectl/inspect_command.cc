// SPDX-License-Identifier: Apache-2.0
#include <cstdio>

#include "tools/clonectl/commands.h"
#include "tools/lib/inspect_report.h"

namespace clonectl {

int Fail(const std::string& message) {
  std::fprintf(stderr, "clonectl: %s\n", message.c_str());
  return 1;
}

int RunInspect(const InspectArgs& args) {
  auto disk = vmdk::Disk::Open(common::PosixStorage(), args.disk);
  if (!disk) return Fail(disk.error().message());
  auto report = tools::InspectDisk(*disk.value());
  if (!report) return Fail(report.error().message());
  std::string text = args.json ? report.value().dump(2) + "\n"
                               : tools::RenderInspectText(report.value());
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace clonectl
