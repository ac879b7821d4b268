// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/read_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace engine {
namespace {

TEST(ReadPoolTest, RunsEveryTaskOnceAndReturnsWhenAllAreDone) {
  ReadPool pool(4);
  std::vector<std::atomic<int>> runs(100);
  std::vector<std::function<void()>> tasks;
  for (size_t i = 0; i < runs.size(); ++i) tasks.push_back([&, i] { runs[i]++; });
  pool.RunAll(tasks);
  for (const auto& r : runs) EXPECT_EQ(r.load(), 1);
}

TEST(ReadPoolTest, TasksRunSideBySide) {
  ReadPool pool(8);
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::vector<std::function<void()>> tasks;
  for (int i = 0; i < 8; ++i) {
    tasks.push_back([&] {
      int now = ++running;
      for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      --running;
    });
  }
  const auto start = std::chrono::steady_clock::now();
  pool.RunAll(tasks);
  EXPECT_GT(most.load(), 1);
  // Eight 50 ms waits one after another would take 400 ms.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(350));
}

TEST(ReadPoolTest, BatchesFromManyThreadsAtOnceAllComplete) {
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 6; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 50; ++round) {
        std::vector<std::function<void()>> tasks(5, [&] { total++; });
        ReadPool::Shared().RunAll(tasks);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 6 * 50 * 5);
}

// A batch's tasks start on the pool at once, so the caller works meanwhile; Wait returns
// after the last, and the destructor waits too.
TEST(ReadPoolTest, ABatchRunsWhileTheCallerWorksAndWaitsForItsTasks) {
  ReadPool pool(2);
  std::atomic<bool> release{false};
  std::atomic<int> done{0};
  {
    ReadPool::Batch batch(pool);
    batch.Add([&] {
      while (!release) std::this_thread::yield();
      done++;
    });
    batch.Add([&] { done++; });
    // The caller is not blocked by Add: it is the one that lets the first task finish.
    release = true;
    batch.Wait();
    EXPECT_EQ(done.load(), 2);
    batch.Add([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      done++;
    });
  }  // the destructor waits for the task added after Wait
  EXPECT_EQ(done.load(), 3);
}

}  // namespace
}  // namespace engine
