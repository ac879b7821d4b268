// SPDX-License-Identifier: Apache-2.0
#pragma once

// Runs one function on several threads while the calling thread reports progress: the
// loop behind clonectl's copies (export, full clone), which split a disk into pieces that
// the workers claim one at a time.

#include <chrono>
#include <functional>

namespace common {

// Runs `worker` on max(1, threads) threads and returns once every one has returned.
// Meanwhile, and once more at the end, the calling thread calls `tick` about every
// `interval` (a progress display). `worker` must not throw.
void RunWorkers(unsigned threads, const std::function<void()>& worker,
                const std::function<void()>& tick,
                std::chrono::milliseconds interval = std::chrono::milliseconds(100));

}  // namespace common
