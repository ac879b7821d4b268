// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/startup_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace clonefs {
namespace {

constexpr char kReady = 'R';

// The parent's side: wait for the child's verdict and exit with it.
[[noreturn]] void WaitForChild(int pipe_read) {
  std::string report;
  char buf[512];
  ssize_t n;
  while ((n = read(pipe_read, buf, sizeof buf)) > 0) report.append(buf, static_cast<size_t>(n));
  if (!report.empty() && report[0] == kReady) _exit(0);
  if (report.empty()) report = "clonefs: the daemon exited before the mount was ready\n";
  std::fputs(report.c_str(), stderr);
  _exit(1);
}

}  // namespace

StartupReport::StartupReport(bool foreground) : foreground_(foreground) {
  if (foreground_) return;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "clonefs: cannot create a pipe: %s\n", std::strerror(errno));
    std::exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "clonefs: cannot fork: %s\n", std::strerror(errno));
    std::exit(1);
  }
  if (pid > 0) {
    close(fds[1]);
    WaitForChild(fds[0]);
  }
  close(fds[0]);
  pipe_write_ = fds[1];
  setsid();  // no terminal's hangup or job control reaches the daemon
}

void StartupReport::Ready() {
  if (foreground_) return;
  if (chdir("/") != 0) {
    // Not fatal: the daemon uses absolute paths and descriptors only.
  }
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    close(null_fd);
  }
  (void)!write(pipe_write_, &kReady, 1);
  close(pipe_write_);
  pipe_write_ = -1;
}

void StartupReport::Fail(const std::string& message) {
  std::string line = message + "\n";
  if (foreground_ || pipe_write_ < 0) {
    std::fputs(line.c_str(), stderr);
  } else {
    (void)!write(pipe_write_, line.data(), line.size());
  }
  std::exit(1);
}

}  // namespace clonefs
