// SPDX-License-Identifier: Apache-2.0
#pragma once

// A process-wide pool of threads for reads that can run side by side: a request that a
// deep chain splits into many small pieces in many layer files would otherwise wait for
// the device once per piece, one after the other. The pool's threads are made once
// (making a thread per request costs more than the reads it would overlap).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace engine {

class ReadPool {
 public:
  // The shared pool (16 threads, made on first use).
  static ReadPool& Shared();

  explicit ReadPool(size_t threads);
  ~ReadPool();
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  // Runs every task, some on the pool's threads and some on the calling thread, and
  // returns when all are done.
  void RunAll(std::vector<std::function<void()>>& tasks);

 private:
  void Work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace engine
