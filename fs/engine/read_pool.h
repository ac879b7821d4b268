// SPDX-License-Identifier: Apache-2.0
#pragma once

// A process-wide pool of threads for reads that can run side by side: a request that a
// deep chain splits into many small pieces in many layer files would otherwise wait for
// the device once per piece, one after the other. The pool's threads are made once
// (making a thread per request costs more than the reads it would overlap).

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace engine {

class ReadPool {
 public:
  // The shared pool (16 threads, made on first use).
  static ReadPool& Shared();

  // Returns once every thread has started and waits for work: a thread still starting may
  // hold the allocator's lock, and a fork() then would leave the child waiting on it.
  explicit ReadPool(size_t threads);
  ~ReadPool();
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  // Tasks waited for together: Add queues each on the pool's threads at once, so the
  // caller can go on with other work (reads served from the page cache) meanwhile.
  class Batch {
   public:
    explicit Batch(ReadPool& pool);
    ~Batch();  // waits for the tasks added
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    void Add(std::function<void()> task);
    // Returns when every task added so far is done.
    void Wait();

   private:
    struct State {
      std::mutex mutex;
      std::condition_variable done;
      size_t left = 0;
    };
    ReadPool& pool_;
    std::shared_ptr<State> state_;  // shared with the queued tasks
  };

  // Runs every task, some on the pool's threads and some on the calling thread, and
  // returns when all are done.
  void RunAll(std::vector<std::function<void()>>& tasks);

 private:
  void Work();
  void Queue(std::function<void()> task);
  // fork() copies only the forking thread. Before it, wait until no task runs and hold the
  // queue (a worker in the middle of a task may hold the allocator's lock, which the
  // child would inherit locked); after it, release the queue, and in the child, where the
  // workers do not exist, run every task on the thread that adds it.
  void BeforeFork();
  void AfterForkInParent();
  void AfterForkInChild();

  std::condition_variable idle_;  // running_ fell to 0, or one more thread started
  size_t running_ = 0;            // tasks being run, their captures included
  size_t started_ = 0;            // threads that have reached their loop
  std::atomic<bool> forked_{false};

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace engine
