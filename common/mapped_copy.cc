// SPDX-License-Identifier: Apache-2.0
#include "common/mapped_copy.h"

#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cstring>

namespace common {
namespace {

// Where the copy on this thread resumes when it faults; null outside a copy.
thread_local sigjmp_buf* t_resume = nullptr;
struct sigaction g_previous{};

void OnSigbus(int signal, siginfo_t* info, void* context) {
  if (sigjmp_buf* resume = t_resume) {
    t_resume = nullptr;
    siglongjmp(*resume, 1);
  }
  // Not a guarded copy: what would have happened without this handler.
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(signal, info, context);
  } else if (!(g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_handler != SIG_DFL &&
             g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(signal);
  } else {
    // Returning re-runs the faulting access, which now takes the default action.
    ::signal(SIGBUS, SIG_DFL);
  }
}

bool InstallHandler() {
  struct sigaction action{};
  action.sa_sigaction = OnSigbus;
  // SA_NODEFER: the handler leaves by siglongjmp without restoring the signal mask (that
  // would cost a system call per copy), so SIGBUS must not be blocked while it runs.
  action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  return ::sigaction(SIGBUS, &action, &g_previous) == 0;
}

}  // namespace

bool CopyFromMapping(std::byte* dst, const std::byte* src, size_t length) {
  static const bool installed = InstallHandler();
  if (!installed) {
    std::memcpy(dst, src, length);
    return true;
  }
  sigjmp_buf resume;
  if (sigsetjmp(resume, /*savemask=*/0) != 0) return false;  // the copy faulted
  t_resume = &resume;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // armed before the copy reads
  std::memcpy(dst, src, length);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_resume = nullptr;
  return true;
}

}  // namespace common
