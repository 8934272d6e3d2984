#include "cachenode/engine_load.h"

#include <limits>

#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

LoadFigures Load(uint32_t queued, uint32_t running, uint64_t prefill, uint64_t free_hbm) {
  LoadFigures l;
  l.queued_requests = queued;
  l.running_requests = running;
  l.prefill_tokens_in_flight = prefill;
  l.free_hbm_blocks = free_hbm;
  return l;
}

class EngineLoadTableTest : public ::testing::Test {
 protected:
  static EngineLoadOptions Options(uint32_t max_engines = 64) {
    EngineLoadOptions o;
    o.ttl = absl::Seconds(3);
    o.max_engines = max_engines;
    return o;
  }

  common::ManualClock clock_{absl::FromUnixSeconds(1'700'000'000)};
};

TEST_F(EngineLoadTableTest, MergeAddsEngineFiguresToTheNodesAndTakesTheirFreeHbm) {
  EngineLoadTable table(Options(), &clock_);
  const LoadFigures node = Load(0, 2, 0, 100);
  // No engine yet: the node's own figures, free HBM included.
  const LoadFigures alone = table.Merge(node);
  EXPECT_EQ(alone.running_requests, 2u);
  EXPECT_EQ(alone.free_hbm_blocks, 100u);

  ASSERT_TRUE(table.Report("gpu0", Load(3, 8, 4096, 10)).ok());
  ASSERT_TRUE(table.Report("gpu1", Load(1, 4, 1024, 5)).ok());
  ASSERT_TRUE(table.Report("gpu0", Load(2, 8, 2048, 12)).ok());  // replaces gpu0's first report
  const EngineLoadSum sum = table.Sum();
  EXPECT_EQ(sum.engines, 2u);
  EXPECT_EQ(sum.total.queued_requests, 3u);

  const LoadFigures merged = table.Merge(node);
  EXPECT_EQ(merged.queued_requests, 3u);
  EXPECT_EQ(merged.running_requests, 2u + 12u);
  EXPECT_EQ(merged.prefill_tokens_in_flight, 3072u);
  EXPECT_EQ(merged.free_hbm_blocks, 17u);  // the engines' HBM, not the node's
}

TEST_F(EngineLoadTableTest, ReportsOlderThanTheTtlStopCounting) {
  EngineLoadTable table(Options(), &clock_);
  ASSERT_TRUE(table.Report("gpu0", Load(5, 1, 100, 7)).ok());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(table.Report("gpu1", Load(1, 1, 10, 3)).ok());
  clock_.Advance(absl::Seconds(1));  // gpu0's report is exactly one TTL old: it still counts
  EXPECT_EQ(table.Sum().engines, 2u);
  clock_.Advance(absl::Milliseconds(1));
  EngineLoadSum sum = table.Sum();
  EXPECT_EQ(sum.engines, 1u);
  EXPECT_EQ(sum.total.queued_requests, 1u);
  EXPECT_EQ(table.Merge(Load(0, 0, 0, 99)).free_hbm_blocks, 3u);

  clock_.Advance(absl::Seconds(3));  // every report is stale: back to the node's own figures
  EXPECT_EQ(table.Sum().engines, 0u);
  const LoadFigures merged = table.Merge(Load(0, 4, 0, 99));
  EXPECT_EQ(merged.queued_requests, 0u);
  EXPECT_EQ(merged.running_requests, 4u);
  EXPECT_EQ(merged.free_hbm_blocks, 99u);

  ASSERT_TRUE(table.Report("gpu0", Load(6, 0, 0, 1)).ok());  // a fresh report counts again
  EXPECT_EQ(table.Sum().total.queued_requests, 6u);
}

TEST_F(EngineLoadTableTest, IsBoundedButStaleEnginesMakeRoom) {
  EngineLoadTable table(Options(/*max_engines=*/2), &clock_);
  ASSERT_TRUE(table.Report("a", Load(1, 0, 0, 0)).ok());
  ASSERT_TRUE(table.Report("b", Load(1, 0, 0, 0)).ok());
  EXPECT_EQ(table.Report("c", Load(1, 0, 0, 0)).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(table.Report("a", Load(2, 0, 0, 0)).ok());  // a known engine still reports
  EXPECT_EQ(table.Sum().total.queued_requests, 3u);

  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(table.Report("a", Load(2, 0, 0, 0)).ok());
  clock_.Advance(absl::Seconds(2));  // b went quiet: its slot goes to c
  ASSERT_TRUE(table.Report("c", Load(4, 0, 0, 0)).ok());
  const EngineLoadSum sum = table.Sum();
  EXPECT_EQ(sum.engines, 2u);
  EXPECT_EQ(sum.total.queued_requests, 6u);
  EXPECT_EQ(table.Report("d", Load(1, 0, 0, 0)).code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(EngineLoadTableTest, EmptyEngineIdIsInvalidArgument) {
  EngineLoadTable table(Options(), &clock_);
  EXPECT_EQ(table.Report("", Load(1, 1, 1, 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table.Sum().engines, 0u);
}

TEST_F(EngineLoadTableTest, SumsSaturateInsteadOfWrapping) {
  EngineLoadTable table(Options(), &clock_);
  constexpr uint32_t kMax32 = std::numeric_limits<uint32_t>::max();
  constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();
  ASSERT_TRUE(table.Report("a", Load(kMax32, kMax32, kMax64, kMax64)).ok());
  ASSERT_TRUE(table.Report("b", Load(5, 5, 5, 5)).ok());
  const LoadFigures merged = table.Merge(Load(0, 1, 0, 0));
  EXPECT_EQ(merged.queued_requests, kMax32);
  EXPECT_EQ(merged.running_requests, kMax32);
  EXPECT_EQ(merged.prefill_tokens_in_flight, kMax64);
  EXPECT_EQ(merged.free_hbm_blocks, kMax64);
}

TEST(EngineLoadOptionsTest, NeedsAPositiveTtlAndRoomForOneEngine) {
  EngineLoadOptions o;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);  // ttl not resolved yet
  o.ttl = absl::Seconds(1);
  EXPECT_TRUE(o.Validate().ok());
  o.max_engines = 0;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::cachenode
