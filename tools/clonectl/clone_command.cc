// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "tools/clonectl/commands.h"
#include "tools/lib/clone_info.h"
#include "tools/lib/full_clone.h"
#include "tools/lib/linked_clone.h"
#include "tools/lib/progress.h"

namespace clonectl {

namespace {

int RunFullClone(const CloneArgs& args) {
  // Ctrl-C and SIGTERM stop the copy cleanly, so no partial clone is left behind.
  const std::atomic<bool>* interrupted = CatchInterrupts();
  std::optional<tools::Progress> progress;  // made once the total is known
  tools::FullCloneRequest request;
  request.source = args.source;
  request.destination = args.destination;
  request.display_name = args.display_name;
  request.snapshot = args.snapshot;
  // The copy mostly waits for the device, so it keeps several reads in flight per core
  // (measured on 2 cores, cold cache, 1 GiB chain: 8 workers 1.24 s, 2 workers 1.74 s).
  request.threads = std::clamp(4 * std::thread::hardware_concurrency(), 4u, 16u);
  request.cancel = interrupted;
  request.progress = [&](uint64_t done, uint64_t total) {
    if (!progress) progress.emplace("full clone", total);
    progress->Update(done);
  };
  auto clone = tools::CreateFullClone(common::PosixStorage(), request);
  if (!clone) {
    if (progress && progress->enabled()) std::fputc('\n', stderr);
    return Fail(clone.error().message());
  }
  uint64_t total = 0;
  for (const auto& disk : clone.value().disks) total += disk.capacity_bytes;
  if (progress) progress->Finish(total);
  for (const auto& disk : clone.value().disks) {
    std::string line = fmt::format(
        "{}: full clone of {} (disk {}, {} bytes): {}.vmdk, {} bytes of data in a {}-byte "
        "monolithicSparse file, in {:.2f} s\n",
        args.destination, disk.source, disk.name, disk.capacity_bytes, disk.name,
        disk.data_bytes, disk.file_bytes, disk.seconds);
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  if (clone.value().vmx) {
    std::string line = fmt::format("{}: configuration {} (disks point at the copies)\n",
                                   args.destination, *clone.value().vmx);
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return 0;
}

}  // namespace

int RunClone(const CloneArgs& args) {
  if (args.full) return RunFullClone(args);
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
