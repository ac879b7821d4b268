// SPDX-License-Identifier: Apache-2.0
#include <csignal>
#include <cstdio>
#include <thread>

#include "tools/clonectl/commands.h"
#include "tools/lib/progress.h"
#include "tools/lib/raw_export.h"

namespace clonectl {
namespace {

std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) { g_interrupted = true; }

}  // namespace

int RunExport(const ExportArgs& args) {
  auto disk = vmdk::Disk::Open(common::PosixStorage(), args.disk);
  if (!disk) return Fail(disk.error().message());

  // Ctrl-C and SIGTERM stop the copy cleanly, so no partial output is left behind.
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  tools::Progress progress("export", disk.value()->capacity_bytes());
  tools::ExportOptions options;
  options.threads = std::max(2u, std::thread::hardware_concurrency());
  options.cancel = &g_interrupted;
  options.progress = [&](uint64_t done) { progress.Update(done); };
  auto stats = tools::ExportRaw(*disk.value(), common::PosixStorage(), args.out, options);
  if (!stats) {
    if (progress.enabled()) std::fputc('\n', stderr);
    return Fail(stats.error().message());
  }
  progress.Finish(stats.value().capacity_bytes);
  return 0;
}

}  // namespace clonectl
