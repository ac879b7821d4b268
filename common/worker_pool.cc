// SPDX-License-Identifier: Apache-2.0
#include "common/worker_pool.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace common {

void RunWorkers(unsigned threads, const std::function<void()>& worker,
                const std::function<void()>& tick, std::chrono::milliseconds interval) {
  const unsigned count = std::max(1u, threads);
  std::mutex mutex;
  std::condition_variable finished_cv;
  unsigned running = count;  // guarded by mutex

  std::vector<std::thread> pool;
  pool.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    pool.emplace_back([&] {
      worker();
      std::lock_guard lock(mutex);
      --running;
      finished_cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mutex);
    while (running > 0) {
      finished_cv.wait_for(lock, interval);
      if (tick) {
        lock.unlock();
        tick();
        lock.lock();
      }
    }
  }
  for (std::thread& t : pool) t.join();
  if (tick) tick();
}

}  // namespace common
