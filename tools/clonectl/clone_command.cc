// SPDX-License-Identifier: Apache-2.0
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "tools/clonectl/commands.h"
#include "tools/lib/clone_info.h"
#include "tools/lib/linked_clone.h"

namespace clonectl {

int RunClone(const CloneArgs& args) {
  auto start = std::chrono::steady_clock::now();
  auto config = tools::CreateLinkedClone(
      common::PosixStorage(), {args.source, args.destination, args.display_name, args.snapshot});
  if (!config) return Fail(config.error().message());
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
  if (const auto& parent = config.value().parent) {
    std::string line = fmt::format("{}: linked clone of {} at snapshot point '{}'\n",
                                   args.destination, parent->path, parent->snapshot);
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  for (const auto& disk : config.value().disks) {
    std::string line = fmt::format(
        "{}: linked clone of {} (disk {}, {} bytes, {} snapshot layers) in {:.1f} ms\n",
        args.destination, disk.parent_path, disk.name, disk.capacity_bytes,
        disk.inherited.size(), ms);
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  if (config.value().vmx) {
    std::string line = fmt::format("{}: configuration {} (disks point at the presented "
                                   "descriptors)\n",
                                   args.destination, *config.value().vmx);
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return 0;
}

int RunInfo(const InfoArgs& args) {
  auto info = tools::CloneInfo(common::PosixStorage(), args.clone);
  if (!info) return Fail(info.error().message());
  std::string text = args.json ? info.value().dump(2) + "\n"
                               : tools::RenderCloneInfoText(info.value());
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace clonectl
