// SPDX-License-Identifier: Apache-2.0
#include <cstdio>
#include <thread>

#include "tools/clonectl/commands.h"
#include "tools/lib/progress.h"
#include "tools/lib/raw_export.h"

namespace clonectl {

int RunExport(const ExportArgs& args) {
  auto disk = vmdk::Disk::Open(common::PosixStorage(), args.disk);
  if (!disk) return Fail(disk.error().message());

  // Ctrl-C and SIGTERM stop the copy cleanly, so no partial output is left behind.
  const std::atomic<bool>* interrupted = CatchInterrupts();

  tools::Progress progress("export", disk.value()->capacity_bytes());
  tools::ExportOptions options;
  options.threads = std::max(2u, std::thread::hardware_concurrency());
  options.cancel = interrupted;
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
