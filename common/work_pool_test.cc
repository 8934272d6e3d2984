#include "common/work_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace strata::common {
namespace {

TEST(WorkPoolTest, RunsEveryItemExactlyOnce) {
  WorkPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.ParallelFor(hits.size(), [&](size_t i) { hits[i].fetch_add(1); });
  for (const auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(WorkPoolTest, UsesWorkersWhileTheCallerBlocks) {
  // Two items that each wait for the other: only finishes if two threads run them at once.
  WorkPool pool(1);
  std::atomic<int> arrived{0};
  pool.ParallelFor(2, [&](size_t) {
    arrived.fetch_add(1);
    while (arrived.load() < 2) std::this_thread::yield();
  });
  EXPECT_EQ(arrived.load(), 2);
}

TEST(WorkPoolTest, ConcurrentCallersShareThePool) {
  WorkPool pool(2);
  std::atomic<long> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 50; ++round) {
        pool.ParallelFor(10, [&](size_t i) { sum.fetch_add(static_cast<long>(i)); });
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(sum.load(), 4L * 50 * 45);
}

TEST(WorkPoolTest, WithoutWorkersRunsOnTheCaller) {
  WorkPool pool(0);
  const auto caller = std::this_thread::get_id();
  int ran = 0;
  pool.ParallelFor(5, [&](size_t) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    ++ran;
  });
  EXPECT_EQ(ran, 5);
}

}  // namespace
}  // namespace strata::common
