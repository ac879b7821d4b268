// SPDX-License-Identifier: Apache-2.0
#include <csignal>

#include "tools/clonectl/commands.h"

namespace clonectl {
namespace {

std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) { g_interrupted = true; }

}  // namespace

const std::atomic<bool>* CatchInterrupts() {
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return &g_interrupted;
}

}  // namespace clonectl
