// SPDX-License-Identifier: Apache-2.0
#include <cstdio>
#include <memory>

#include "tools/clonectl/commands.h"
#include "tools/lib/progress.h"
#include "tools/lib/verify.h"

namespace clonectl {

int RunVerify(const VerifyArgs& args) {
  // The scrub reads every block of every frozen layer: a progress bar on a terminal.
  std::unique_ptr<tools::Progress> progress;
  uint64_t last_done = 0;
  tools::VerifyOptions options;
  options.full = args.full;
  options.progress = [&](uint64_t done, uint64_t total) {
    if (!progress) progress = std::make_unique<tools::Progress>("scrub", total);
    progress->Update(done);
    last_done = done;
  };
  auto report = tools::VerifyVm(common::PosixStorage(), args.vm, options);
  if (progress) progress->Finish(last_done);
  if (!report) return Fail(report.error().message());
  std::string text = args.json ? tools::VerifyReportJson(report.value()).dump(2) + "\n"
                               : tools::RenderVerifyText(report.value());
  std::fwrite(text.data(), 1, text.size(), stdout);
  return report.value().ok() ? 0 : 1;
}

}  // namespace clonectl
