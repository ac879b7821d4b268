// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/read_pool.h"

#include <atomic>
#include <memory>

#include <pthread.h>

namespace engine {

ReadPool& ReadPool::Shared() {
  static ReadPool pool(16);
  static const int registered = ::pthread_atfork([] { Shared().BeforeFork(); },
                                                 [] { Shared().AfterForkInParent(); },
                                                 [] { Shared().AfterForkInChild(); });
  (void)registered;
  return pool;
}

void ReadPool::BeforeFork() {
  mutex_.lock();
  std::unique_lock lock(mutex_, std::adopt_lock);
  idle_.wait(lock, [&] { return running_ == 0; });
  lock.release();  // held across fork(), released by the after-fork handlers
}

void ReadPool::AfterForkInParent() { mutex_.unlock(); }

void ReadPool::AfterForkInChild() {
  forked_ = true;
  mutex_.unlock();
}

ReadPool::ReadPool(size_t threads) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return started_ == threads; });
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
  {
    std::lock_guard lock(mutex_);
    ++started_;
  }
  idle_.notify_all();
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    task = nullptr;  // its captures are freed before the task counts as done
    std::lock_guard lock(mutex_);
    if (--running_ == 0) idle_.notify_all();
  }
}

void ReadPool::Queue(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
}

ReadPool::Batch::Batch(ReadPool& pool) : pool_(pool), state_(std::make_shared<State>()) {}

ReadPool::Batch::~Batch() { Wait(); }

void ReadPool::Batch::Add(std::function<void()> task) {
  if (pool_.forked_) {  // a forked child: the pool's threads stayed in the parent
    task();
    return;
  }
  {
    std::lock_guard lock(state_->mutex);
    ++state_->left;
  }
  pool_.Queue([state = state_, task = std::move(task)] {
    task();
    std::lock_guard lock(state->mutex);
    if (--state->left == 0) state->done.notify_all();
  });
}

void ReadPool::Batch::Wait() {
  std::unique_lock lock(state_->mutex);
  state_->done.wait(lock, [&] { return state_->left == 0; });
}

void ReadPool::RunAll(std::vector<std::function<void()>>& tasks) {
  if (tasks.empty()) return;
  Batch batch(*this);
  for (size_t i = 1; i < tasks.size(); ++i) batch.Add(std::move(tasks[i]));
  tasks[0]();
  batch.Wait();
}

}  // namespace engine
