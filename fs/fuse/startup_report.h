// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonefs` returns once the mount is usable, with the daemon left running, or with the
// one-line error that stopped it. libfuse's fuse_daemonize() cannot carry an error back
// (its parent exits 0 as soon as the child starts), so the daemon forks itself first:
// the parent waits on a pipe for "ready" or for the error text, and exits with it.

#include <string>

namespace clonefs {

class StartupReport {
 public:
  // foreground: no fork; Fail prints the error itself. Otherwise forks; only the child
  // returns from here (the parent exits with the child's report).
  explicit StartupReport(bool foreground);

  // The mount is ready: the parent exits 0; the daemon detaches from the terminal.
  void Ready();
  // Starting failed: the parent prints `message` and exits 1.
  [[noreturn]] void Fail(const std::string& message);

 private:
  bool foreground_;
  int pipe_write_ = -1;
};

}  // namespace clonefs
