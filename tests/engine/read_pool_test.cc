// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/read_pool.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
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

// Waits up to 20 s for a forked child and returns its exit code, or -1 if it hung (then
// it is killed) or died of a signal.
int ExitCodeOf(pid_t child) {
  int status = 0;
  for (int waited_ms = 0; ::waitpid(child, &status, WNOHANG) == 0; waited_ms += 5) {
    if (waited_ms > 20'000) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Allocates and frees for a while, as a read's task does (buffers, pieces): a fork in the
// middle would leave the child an allocator locked by a thread it does not have.
void Churn(std::chrono::microseconds how_long) {
  const auto until = std::chrono::steady_clock::now() + how_long;
  while (std::chrono::steady_clock::now() < until) {
    std::vector<std::vector<char>> blocks;
    for (size_t size = 16; size < 64 * 1024; size *= 2) blocks.emplace_back(size, 'x');
  }
}

// Tests and tools fork while the shared pool runs tasks: the child must neither inherit a
// lock a worker held mid-task nor wait for workers that stayed in the parent. Each child
// runs a batch of its own, allocating, and exits; none may hang. Only the pool's threads
// run beside the fork here: a test thread allocating at that moment would hang a child
// whatever the pool did.
TEST(ReadPoolTest, AForkedChildRunsItsBatchesAloneAndNeverHangs) {
  for (int round = 0; round < 50; ++round) {
    ReadPool::Batch busy(ReadPool::Shared());
    for (int i = 0; i < 24; ++i) busy.Add([] { Churn(std::chrono::microseconds(500)); });
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      int ran = 0;
      {
        ReadPool::Batch batch(ReadPool::Shared());
        for (int i = 0; i < 4; ++i) batch.Add([&ran] { Churn(std::chrono::microseconds(100)); ran++; });
      }
      ::_exit(ran == 4 ? 0 : 1);  // not returning: `busy` would wait for the parent's tasks
    }
    ASSERT_EQ(ExitCodeOf(child), 0) << "round " << round;
  }
}

// A fork just after a pool is made: its threads, still starting, must not hold a lock
// the child needs (the hang CI saw when a test forked right after its first read).
TEST(ReadPoolTest, AForkJustAfterAPoolStartsNeverHangs) {
  for (int round = 0; round < 40; ++round) {
    ReadPool pool(16);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      Churn(std::chrono::milliseconds(2));
      ::_exit(0);
    }
    ASSERT_EQ(ExitCodeOf(child), 0) << "round " << round;
  }
}

}  // namespace
}  // namespace engine
