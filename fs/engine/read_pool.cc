// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/read_pool.h"

#include <atomic>
#include <memory>

namespace engine {

ReadPool& ReadPool::Shared() {
  static ReadPool pool(16);
  return pool;
}

ReadPool::ReadPool(size_t threads) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

ReadPool::~ReadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ReadPool::Work() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

void ReadPool::RunAll(std::vector<std::function<void()>>& tasks) {
  if (tasks.empty()) return;
  // Each task counts itself done; the caller takes tasks too until none is left to take,
  // then waits for the ones running elsewhere.
  struct Batch {
    std::mutex mutex;
    std::condition_variable done;
    size_t left;
  };
  auto batch = std::make_shared<Batch>();
  batch->left = tasks.size();
  auto wrap = [batch](std::function<void()> task) {
    return [batch, task = std::move(task)] {
      task();
      std::lock_guard lock(batch->mutex);
      if (--batch->left == 0) batch->done.notify_all();
    };
  };
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 1; i < tasks.size(); ++i) queue_.push_back(wrap(std::move(tasks[i])));
  }
  wake_.notify_all();
  wrap(std::move(tasks[0]))();
  std::unique_lock lock(batch->mutex);
  batch->done.wait(lock, [&] { return batch->left == 0; });
}

}  // namespace engine
