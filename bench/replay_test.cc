#include "bench/replay.h"

#include <filesystem>

#include "bench/trace_gen.h"
#include "gtest/gtest.h"

namespace strata::bench {
namespace {

Trace SmallTrace(uint32_t requests, double rate) {
  GenOptions g;
  g.requests = requests;
  g.rate_per_s = rate;
  g.seed = 7;
  absl::StatusOr<std::vector<TraceRequest>> reqs = GenerateTrace(g);
  EXPECT_TRUE(reqs.ok()) << reqs.status();
  Trace t;
  t.source = "generated";
  t.block_tokens = 512;
  t.requests = *reqs;
  return t;
}

ReplayOptions Options(int nodes, const std::string& experiment, TierSet tiers) {
  ReplayOptions o;
  o.nodes = nodes;
  o.experiment = experiment;
  o.tiers = tiers;
  return o;
}

TEST(ReplayTest, TwoSimRunsPrintTheSameBytes) {
  const Trace t = SmallTrace(150, 8);
  const ReplayOptions o = Options(3, "locality=50,round_robin=50", TierSet::kHbmDramSsd);
  absl::StatusOr<ReplayResult> a = RunReplayOn(t, o, nullptr);
  absl::StatusOr<ReplayResult> b = RunReplayOn(t, o, nullptr);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(FormatReplayJson(*a), FormatReplayJson(*b));
  EXPECT_EQ(a->all.requests + a->rejected, 150u);
}

TEST(ReplayTest, AbSplitSendsEachArmItsShareOfRequests) {
  const Trace t = SmallTrace(400, 8);
  absl::StatusOr<ReplayResult> r =
      RunReplayOn(t, Options(2, "locality=75,round_robin=25", TierSet::kHbmDram), nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->policies.size(), 2u);
  EXPECT_EQ(r->policies[0].policy, "locality");
  EXPECT_EQ(r->policies[1].policy, "round_robin");
  const double total = static_cast<double>(r->policies[0].requests + r->policies[1].requests);
  EXPECT_EQ(total, static_cast<double>(r->all.requests));
  EXPECT_NEAR(r->policies[0].requests / total, 0.75, 0.07);
  // Every arm scores every request (its own live ones included) in shadow.
  EXPECT_EQ(r->policies[0].shadow_requests, r->all.requests);
  EXPECT_EQ(r->policies[1].shadow_requests, r->all.requests);
}

TEST(ReplayTest, HbmOnlyServesNothingFromLowerTiersAndTiersServeMore) {
  const Trace t = SmallTrace(300, 8);
  absl::StatusOr<ReplayResult> hbm = RunReplayOn(
      t, [] { auto o = Options(1, "locality", TierSet::kHbm); o.hbm_bytes = 8ull << 30; return o; }(),
      nullptr);
  absl::StatusOr<ReplayResult> tiers = RunReplayOn(
      t,
      [] { auto o = Options(1, "locality", TierSet::kHbmDramSsd); o.hbm_bytes = 8ull << 30; return o; }(),
      nullptr);
  ASSERT_TRUE(hbm.ok()) << hbm.status();
  ASSERT_TRUE(tiers.ok()) << tiers.status();
  EXPECT_EQ(hbm->all.hit_ratio[1] + hbm->all.hit_ratio[2] + hbm->all.hit_ratio[3], 0);
  EXPECT_GT(tiers->all.hit_ratio[1] + tiers->all.hit_ratio[2], 0);
  EXPECT_GT(tiers->all.total_hit_ratio, hbm->all.total_hit_ratio);
  EXPECT_LE(tiers->all.total_hit_ratio, tiers->ideal_hit_ratio + 1e-9);
}

TEST(ReplayTest, LocalityKeepsSharedPrefixesTogetherBetterThanRoundRobin) {
  const Trace t = SmallTrace(400, 8);
  absl::StatusOr<ReplayResult> loc =
      RunReplayOn(t, Options(4, "locality", TierSet::kHbm), nullptr);
  absl::StatusOr<ReplayResult> rr =
      RunReplayOn(t, Options(4, "round_robin", TierSet::kHbm), nullptr);
  ASSERT_TRUE(loc.ok() && rr.ok());
  EXPECT_GT(loc->all.total_hit_ratio, rr->all.total_hit_ratio);
}

TEST(ReplayTest, JsonCarriesTheDocumentedFields) {
  const Trace t = SmallTrace(60, 8);
  absl::StatusOr<ReplayResult> r =
      RunReplayOn(t, Options(2, "locality=50,random=50", TierSet::kHbmDram), nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string json = FormatReplayJson(*r);
  for (const char* field :
       {"\"policy\"", "\"nodes\":2", "\"tiers\":\"hbm+dram\"", "\"requests\"",
        "\"throughput_tokens_per_s\"", "\"output_tokens_per_s\"", "\"ttft_ms\":{\"p50\"",
        "\"p95\"", "\"p99\"", "\"e2e_ms\"", "\"hit_ratio\":{\"hbm\"", "\"dram\"", "\"ssd\"",
        "\"total\"", "\"ideal_hit_ratio\"", "\"load_imbalance\"", "\"policies\":[",
        "\"hbm\":\"hbm(emulated)\""}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
}

TEST(ReplayTest, RealTraceReplaysWhenPresent) {
  const std::string path =
      std::string(STRATA_SOURCE_DIR) + "/../shared/traces/mooncake_synthetic_trace.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  ReplayOptions o = Options(2, "locality", TierSet::kHbmDramSsd);
  o.trace_path = path;
  o.trace.max_requests = 200;
  absl::StatusOr<ReplayResult> r = RunReplay(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->all.requests, 200u);
  EXPECT_GT(r->all.throughput_tokens_per_s, 0);
  EXPECT_GT(r->all.total_hit_ratio, 0);
}

}  // namespace
}  // namespace strata::bench
