// SPDX-License-Identifier: Apache-2.0
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "tools/clonectl/commands.h"
#include "tools/lib/delete.h"
#include "tools/lib/progress.h"
#include "tools/lib/revert.h"
#include "tools/lib/snapshot.h"
#include "tools/lib/snapshot_list.h"

namespace clonectl {

int RunSnapshot(const SnapshotArgs& args) {
  auto start = std::chrono::steady_clock::now();
  // Freezing checksums every block the VM wrote since its last snapshot point.
  std::unique_ptr<tools::Progress> progress;
  uint64_t last_done = 0;
  tools::SnapshotOptions options;
  options.progress = [&](uint64_t done, uint64_t total) {
    if (!progress) progress = std::make_unique<tools::Progress>("checksums", total);
    progress->Update(done);
    last_done = done;
  };
  auto snapshot = tools::TakeSnapshot(common::PosixStorage(), args.vm, args.name, options);
  if (progress) progress->Finish(last_done);
  if (!snapshot) return Fail(snapshot.error().message());
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
  std::string line = fmt::format("{}: snapshot point '{}' taken in {:.1f} ms\n", args.vm,
                                 args.name, ms);
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

int RunSnapshots(const SnapshotsArgs& args) {
  auto list = tools::ListSnapshots(common::PosixStorage(), args.vm);
  if (!list) return Fail(list.error().message());
  std::string text = args.json ? list.value().dump(2) + "\n"
                               : tools::RenderSnapshotsText(list.value());
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

int RunRevert(const RevertArgs& args) {
  auto snapshot = tools::RevertToSnapshot(common::PosixStorage(), args.vm, args.name);
  if (!snapshot) return Fail(snapshot.error().message());
  std::string line = fmt::format("{}: reverted to snapshot point '{}' (taken {})\n", args.vm,
                                 args.name, snapshot.value().created_utc);
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

int RunDelete(const DeleteArgs& args) {
  std::unique_ptr<tools::Progress> progress;
  uint64_t last_done = 0;
  tools::DeleteOptions options;
  options.forget_missing = args.forget_missing;
  options.progress = [&](uint64_t done, uint64_t total) {
    if (!progress) progress = std::make_unique<tools::Progress>("merging", total);
    progress->Update(done);
    last_done = done;
  };
  common::Status status =
      args.snapshot.empty()
          ? tools::DeleteVm(common::PosixStorage(), args.vm, options)
          : tools::DeleteSnapshot(common::PosixStorage(), args.vm, args.snapshot, options);
  if (progress) progress->Finish(last_done);
  if (!status.ok()) return Fail(status.message());
  std::string line = args.snapshot.empty()
                         ? fmt::format("{}: deleted\n", args.vm)
                         : fmt::format("{}: snapshot point '{}' deleted\n", args.vm, args.snapshot);
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

}  // namespace clonectl
