#include "router/experiment.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace strata::router {
namespace {

ExperimentSpec MustParse(std::string_view text) {
  auto spec = ExperimentSpec::Parse(text);
  EXPECT_TRUE(spec.ok()) << text << ": " << spec.status();
  return spec.ok() ? *spec : ExperimentSpec{};
}

TEST(ExperimentSpecTest, ParsesWeightedArmsInOrder) {
  const ExperimentSpec spec = MustParse("locality=50,round_robin=50");
  ASSERT_EQ(spec.arms.size(), 2u);
  EXPECT_EQ(spec.arms[0].policy, "locality");
  EXPECT_EQ(spec.arms[0].weight, 50u);
  EXPECT_EQ(spec.arms[1].policy, "round_robin");
  EXPECT_EQ(spec.arms[1].weight, 50u);
  EXPECT_EQ(spec.ToString(), "locality=50,round_robin=50");
}

TEST(ExperimentSpecTest, ANameWithoutWeightWeighsOneAndWhitespaceIsIgnored) {
  const ExperimentSpec single = MustParse("locality");
  ASSERT_EQ(single.arms.size(), 1u);
  EXPECT_EQ(single.arms[0].weight, 1u);

  const ExperimentSpec spaced = MustParse("  locality = 3 ,\trandom ,least_loaded=007 ");
  EXPECT_EQ(spaced.ToString(), "locality=3,random=1,least_loaded=7");
  EXPECT_EQ(MustParse(spaced.ToString()).ToString(), spaced.ToString());
}

TEST(ExperimentSpecTest, RejectsMalformedSpecs) {
  for (const char* bad :
       {"", "   ", "locality=0", "locality=-1", "locality=abc", "locality=1.5",
        "locality=", "locality=+2", "locality=1000001", "locality,locality=2", "nosuch=1",
        "locality=1,", ",locality", "=5", "locality=1,,random=1", "Locality=1"}) {
    EXPECT_EQ(ExperimentSpec::Parse(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << "'" << bad << "'";
  }
  const std::string unknown(ExperimentSpec::Parse("locality=1,fastest=1").status().message());
  EXPECT_NE(unknown.find("fastest"), std::string::npos);
  EXPECT_NE(unknown.find("consistent_hash"), std::string::npos);  // lists the known names
}

TEST(ExperimentSpecTest, AssignIsDeterministicPerKey) {
  const ExperimentSpec spec = MustParse("locality=1,round_robin=1,random=1");
  for (uint64_t key : {0ull, 1ull, 42ull, ~0ull}) {
    const size_t arm = spec.Assign(key);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(spec.Assign(key), arm);
  }
}

TEST(ExperimentSpecTest, AssignSplitsSequentialKeysInProportion) {
  const ExperimentSpec even = MustParse("locality=50,round_robin=50");
  int first = 0;
  for (uint64_t key = 0; key < 10000; ++key) first += even.Assign(key) == 0;
  // Binomial(10000, 0.5): sd 50; 250 is 5 sd.
  EXPECT_NEAR(first, 5000, 250);

  const ExperimentSpec skewed = MustParse("locality=9,round_robin=1");
  int second = 0;
  for (uint64_t key = 0; key < 10000; ++key) second += skewed.Assign(key) == 1;
  EXPECT_NEAR(second, 1000, 150);  // sd 30

  const ExperimentSpec single = MustParse("least_loaded");
  for (uint64_t key = 0; key < 100; ++key) EXPECT_EQ(single.Assign(key), 0u);
}

TEST(ExperimentStatsTest, ReportsMeansPerArmInSpecOrder) {
  ExperimentStats stats(MustParse("round_robin=1,locality=3"));
  stats.RecordLive(
      1, {.matched_per_tier = {4, 2, 0}, .requested_blocks = 10, .predicted_ttft_ms = 30});
  stats.RecordLive(1,
                   {.matched_per_tier = {0, 0, 6}, .requested_blocks = 8, .predicted_ttft_ms = 50});
  stats.RecordLive(0, {.requested_blocks = 5, .predicted_ttft_ms = 70});
  stats.RecordLive(9, {.requested_blocks = 5});  // unknown arm: ignored

  const ExperimentReportData r = stats.Report();
  EXPECT_EQ(r.spec, "round_robin=1,locality=3");
  EXPECT_EQ(r.requests, 3u);
  ASSERT_EQ(r.policies.size(), 2u);
  EXPECT_EQ(r.policies[0].policy, "round_robin");
  EXPECT_EQ(r.policies[0].weight, 1u);
  EXPECT_EQ(r.policies[0].decisions, 1u);
  EXPECT_DOUBLE_EQ(r.policies[0].mean_predicted_ttft_ms, 70);
  const PolicyReport& loc = r.policies[1];
  EXPECT_EQ(loc.policy, "locality");
  EXPECT_EQ(loc.decisions, 2u);
  EXPECT_EQ(loc.matched_per_tier, (std::array<uint64_t, kNumTiers>{4, 2, 6}));
  EXPECT_EQ(loc.requested_blocks, 18u);
  EXPECT_DOUBLE_EQ(loc.mean_predicted_ttft_ms, 40);
  EXPECT_EQ(loc.outcomes, 0u);
  EXPECT_EQ(loc.mean_reported_ttft_ms, 0);
  EXPECT_EQ(loc.p99_reported_ttft_ms, 0);
}

TEST(ExperimentStatsTest, ReportedTtftPercentilesAreWithinOnePercent) {
  ExperimentStats stats(MustParse("locality"));
  // 1..1000 ms, shuffled order does not matter to a histogram.
  for (int v = 1000; v >= 1; --v) stats.RecordOutcome(0, v);
  stats.RecordOutcome(0, -5);   // ignored
  stats.RecordOutcome(0, NAN);  // ignored
  const PolicyReport r = stats.Report().policies[0];
  EXPECT_EQ(r.outcomes, 1000u);
  EXPECT_DOUBLE_EQ(r.mean_reported_ttft_ms, 500.5);
  EXPECT_NEAR(r.p50_reported_ttft_ms, 500, 5);  // nearest rank: the 500th value
  EXPECT_NEAR(r.p99_reported_ttft_ms, 990, 9.9);
}

TEST(ExperimentStatsTest, SingleOutcomeIsReportedExactly) {
  ExperimentStats stats(MustParse("locality"));
  stats.RecordOutcome(0, 123.456);
  const PolicyReport r = stats.Report().policies[0];
  EXPECT_DOUBLE_EQ(r.p50_reported_ttft_ms, 123.456);
  EXPECT_DOUBLE_EQ(r.p99_reported_ttft_ms, 123.456);
}

TEST(ExperimentStatsTest, TailPercentileSeesTheSlowOutliers) {
  ExperimentStats stats(MustParse("locality"));
  for (int i = 0; i < 980; ++i) stats.RecordOutcome(0, 20);
  for (int i = 0; i < 20; ++i) stats.RecordOutcome(0, 4000);
  const PolicyReport r = stats.Report().policies[0];
  EXPECT_NEAR(r.p50_reported_ttft_ms, 20, 0.2);
  EXPECT_NEAR(r.p99_reported_ttft_ms, 4000, 40);
}

TEST(ExperimentStatsTest, CountsShadowResultsAndAgreements) {
  ExperimentStats stats(MustParse("locality=1,least_loaded=1"));
  stats.RecordShadow(1, {.matched_blocks = 4, .predicted_ttft_ms = 10, .agrees_with_live = true});
  stats.RecordShadow(1, {.matched_blocks = 0, .predicted_ttft_ms = 30, .agrees_with_live = false});
  stats.RecordShadow(1, {.matched_blocks = 8, .predicted_ttft_ms = 20, .agrees_with_live = true});
  const ExperimentReportData r = stats.Report();
  EXPECT_EQ(r.requests, 0u);  // shadows are not requests
  EXPECT_EQ(r.policies[0].shadow_requests, 0u);
  const PolicyReport& ll = r.policies[1];
  EXPECT_EQ(ll.shadow_requests, 3u);
  EXPECT_DOUBLE_EQ(ll.mean_shadow_hit_blocks, 4);
  EXPECT_DOUBLE_EQ(ll.mean_shadow_predicted_ttft_ms, 20);
  EXPECT_EQ(ll.shadow_agreements, 2u);
}

TEST(ExperimentStatsTest, ConcurrentRecordersLoseNothing) {
  ExperimentStats stats(MustParse("locality=1,random=1"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&stats, t] {
      for (int i = 0; i < 1000; ++i) {
        stats.RecordLive(t % 2, {.requested_blocks = 1, .predicted_ttft_ms = 1});
        stats.RecordShadow(1 - t % 2, {.matched_blocks = 1});
        stats.RecordOutcome(t % 2, 10);
        if (i % 100 == 0) stats.Report();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const ExperimentReportData r = stats.Report();
  EXPECT_EQ(r.requests, 4000u);
  for (const PolicyReport& p : r.policies) {
    EXPECT_EQ(p.decisions, 2000u);
    EXPECT_EQ(p.shadow_requests, 2000u);
    EXPECT_EQ(p.outcomes, 2000u);
  }
}

}  // namespace
}  // namespace strata::router
