#include "router/cost_model.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "strata/v1/cost_model.pb.h"

namespace strata::router {
namespace {

namespace fs = std::filesystem;

// The shipped calibration, found from this source file's path. Under ccache's base_dir __FILE__ is
// relative to the build root (where the compiler ran), and the test binary sits in <build>/tests.
std::string ShippedJsonPath() {
  const fs::path file = fs::path(__FILE__).parent_path() / "cost_model_h100_llama3_8b.json";
  if (file.is_absolute()) return file.string();
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& base : {exe.parent_path().parent_path(), fs::current_path()}) {
    if (fs::exists(base / file, ec)) return (base / file).string();
  }
  return file.string();
}

std::string ShippedJson() {
  std::ifstream in(ShippedJsonPath());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

strata::v1::CostModelConfig ShippedConfig() {
  strata::v1::CostModelConfig config;
  const std::string json = ShippedJson();
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &config).ok());
  return config;
}

std::string ToJson(const strata::v1::CostModelConfig& config) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(config, &json).ok());
  return json;
}

constexpr double kBlockBytes16 = 16 * 131072.0;  // one 16-token block of Llama-3-8B KV: 2 MiB

TEST(CostModelTest, ShippedJsonEqualsCompiledDefault) {
  auto model = CostModel::FromJsonFile(ShippedJsonPath());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->params(), CostModel::Default().params());
  EXPECT_TRUE(CostModel::Default().params().Validate().ok());
}

TEST(CostModelTest, ShippedJsonFitRowsAreWhatPrefillMsComputes) {
  const strata::v1::CostModelConfig config = ShippedConfig();
  const CostModel model = CostModel::Default();
  ASSERT_EQ(config.prefill().rows_size(), 8);
  double max_abs = 0;
  for (const auto& row : config.prefill().rows()) {
    const double fitted = model.PrefillMs(row.cached_tokens(), row.new_tokens());
    EXPECT_NEAR(fitted, row.fitted_ms(), 0.005) << row.ShortDebugString();
    EXPECT_NEAR(row.measured_ms() - fitted, row.residual_ms(), 0.011) << row.ShortDebugString();
    max_abs = std::max(max_abs, std::abs(row.measured_ms() - fitted));
  }
  EXPECT_NEAR(max_abs, config.prefill().max_abs_residual_ms(), 0.01);
}

TEST(CostModelTest, EveryShippedFigureSaysWhereItCameFrom) {
  const strata::v1::CostModelConfig c = ShippedConfig();
  EXPECT_FALSE(c.source().empty());
  for (const auto* f :
       {&c.kv_bytes_per_token(), &c.block_tokens(), &c.dram_gbps(), &c.ssd_read_gbps(),
        &c.peer_gbps(), &c.peer_rtt_ms(), &c.per_request_queue_ms(), &c.prefill().t0_ms(),
        &c.prefill().a_ms(), &c.prefill().b_ms(), &c.prefill().g_ms()}) {
    EXPECT_FALSE(f->from().empty()) << f->ShortDebugString();
  }
  // Nothing measured the network: the file must say so.
  EXPECT_TRUE(c.peer_gbps().assumption());
  EXPECT_TRUE(c.peer_rtt_ms().assumption());
  EXPECT_FALSE(c.dram_gbps().assumption());
}

TEST(CostModelTest, MissingFileIsNotFound) {
  auto model = CostModel::FromJsonFile("/nonexistent/strata/cost_model.json");
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
}

TEST(CostModelTest, MalformedOrUnknownJsonIsInvalidArgument) {
  EXPECT_EQ(CostModel::FromJson("{").status().code(), absl::StatusCode::kInvalidArgument);
  std::string json = ShippedJson();
  json.insert(json.find('{') + 1, "\"dram_gbs\": {\"value\": 50},");
  EXPECT_EQ(CostModel::FromJson(json).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CostModelTest, BadFigureInJsonIsNamed) {
  struct Case {
    const char* field;
    void (*spoil)(strata::v1::CostModelConfig*);
  };
  const Case cases[] = {
      {"peer_gbps", [](strata::v1::CostModelConfig* c) { c->mutable_peer_gbps()->set_value(0); }},
      {"ssd_read_gbps",
       [](strata::v1::CostModelConfig* c) { c->mutable_ssd_read_gbps()->set_value(-1); }},
      {"dram_gbps", [](strata::v1::CostModelConfig* c) { c->clear_dram_gbps(); }},
      {"block_tokens",
       [](strata::v1::CostModelConfig* c) { c->mutable_block_tokens()->set_value(1.5); }},
      {"kv_bytes_per_token",
       [](strata::v1::CostModelConfig* c) { c->mutable_kv_bytes_per_token()->set_value(0); }},
      {"prefill.g_ms", [](strata::v1::CostModelConfig* c) { c->mutable_prefill()->clear_g_ms(); }},
      {"prefill_b_ms",
       [](strata::v1::CostModelConfig* c) {
         c->mutable_prefill()->mutable_b_ms()->set_value(-1e-6);
       }},
      {"per_request_queue_ms",
       [](strata::v1::CostModelConfig* c) { c->mutable_per_request_queue_ms()->set_value(-1); }},
  };
  for (const Case& k : cases) {
    strata::v1::CostModelConfig config = ShippedConfig();
    k.spoil(&config);
    auto model = CostModel::FromJson(ToJson(config));
    ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << k.field;
    EXPECT_NE(std::string(model.status().message()).find(k.field), std::string::npos)
        << model.status();
  }
}

TEST(CostModelTest, ValidateNamesTheBadParameter) {
  const CostModelParams good = CostModel::Default().params();
  struct Case {
    const char* field;
    void (*spoil)(CostModelParams*);
  };
  const Case cases[] = {
      {"kv_bytes_per_token", [](CostModelParams* p) { p->kv_bytes_per_token = 0; }},
      {"block_tokens", [](CostModelParams* p) { p->block_tokens = 0; }},
      {"dram_gbps", [](CostModelParams* p) { p->dram_gbps = 0; }},
      {"ssd_gbps", [](CostModelParams* p) { p->ssd_gbps = std::nan(""); }},
      {"peer_gbps", [](CostModelParams* p) { p->peer_gbps = -3; }},
      {"peer_rtt_ms", [](CostModelParams* p) { p->peer_rtt_ms = -0.1; }},
      {"prefill_a_ms", [](CostModelParams* p) { p->prefill_a_ms = 0; }},
      {"prefill_t0_ms", [](CostModelParams* p) { p->prefill_t0_ms = INFINITY; }},
  };
  for (const Case& k : cases) {
    CostModelParams p = good;
    k.spoil(&p);
    const absl::Status s = p.Validate();
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << k.field;
    EXPECT_NE(std::string(s.message()).find(k.field), std::string::npos) << s;
  }
}

TEST(CostModelTest, SsdBlocksReachHbmThroughDramInSeries) {
  const CostModelParams p = CostModel::Default().params();
  EXPECT_DOUBLE_EQ(p.ssd_gbps, 1.0 / (1.0 / 1.089 + 1.0 / p.dram_gbps));
  EXPECT_LT(p.ssd_gbps, 1.089);
  EXPECT_GT(p.ssd_gbps, 1.06);
}

TEST(CostModelTest, PrefillMatchesCalibrationWithinFitResiduals) {
  const CostModel model = CostModel::Default();
  // DESIGN section 9: 512 tokens 16.8 ms at depth 0, 76.7 ms after 32k cached; 8192 tokens 194 ms.
  EXPECT_NEAR(model.PrefillMs(0, 512), 16.8, 3);
  EXPECT_NEAR(model.PrefillMs(32768, 512), 76.66, 8);
  EXPECT_NEAR(model.PrefillMs(0, 8192), 193.78, 5);
  EXPECT_LT(model.PrefillMs(0, 512), model.PrefillMs(8192, 512));
  EXPECT_LT(model.PrefillMs(8192, 512), model.PrefillMs(32768, 512));
  EXPECT_EQ(model.PrefillMs(4096, 0), 0);
}

TEST(CostModelTest, PrefillNeverExceedsComputingThePrefixToo) {
  const CostModel model = CostModel::Default();
  const CostModelParams& p = model.params();
  // Far outside the calibrated rows the raw surface says a 2k cached prefix slows a 16k prefill.
  const double c = 2048, n = 16384;
  const double raw =
      p.prefill_t0_ms + p.prefill_a_ms * n + p.prefill_b_ms * n * c + p.prefill_g_ms * n * n;
  ASSERT_GT(raw, model.PrefillMs(0, 2048 + 16384));
  EXPECT_DOUBLE_EQ(model.PrefillMs(2048, 16384), model.PrefillMs(0, 2048 + 16384));
  // More of a fixed prompt cached never costs more.
  for (uint64_t total : {1024, 8192, 32768, 131072}) {
    double previous = model.PrefillMs(0, total);
    for (uint64_t cached = 512; cached < total; cached += 512) {
      const double ms = model.PrefillMs(cached, total - cached);
      ASSERT_LE(ms, previous + 1e-9) << "total " << total << " cached " << cached;
      previous = ms;
    }
  }
}

TEST(CostModelTest, QueueCountsRequestsAheadAndPrefillTokensInFlight) {
  const CostModel model = CostModel::Default();
  CostInput in;
  in.block_tokens = 16;
  in.total_blocks = 4;
  in.load.queued_requests = 2;
  in.load.running_requests = 3;
  in.load.prefill_tokens_in_flight = 1000;
  const CostBreakdown b = model.Predict(in);
  EXPECT_DOUBLE_EQ(b.queue_ms, 5 * 0.457 + 1000 * model.params().prefill_a_ms);
  EXPECT_DOUBLE_EQ(b.total_ms, b.queue_ms + b.recompute_ms);
}

TEST(CostModelTest, TotalIsQueueingPlusALoadIndependentPart) {
  const CostModel model = CostModel::Default();
  const std::vector<NodeMatch> holders = {{.node = 7, .matched = 12, .per_tier = {12, 0, 0}}};
  CostInput in;
  in.block_tokens = 512;
  in.total_blocks = 16;
  in.match = {.node = 1, .matched = 4, .per_tier = {0, 4, 0}, .slowest = Tier::kDram};
  in.holders = holders;
  const double idle = model.Predict(in).total_ms;
  in.load.queued_requests = 3;
  in.load.running_requests = 2;
  in.load.prefill_tokens_in_flight = 4096;
  EXPECT_DOUBLE_EQ(model.Predict(in).total_ms, idle + model.QueueMs(in.load));
  EXPECT_GT(model.QueueMs(in.load), 0);
}

TEST(CostModelTest, LoadTimeIsBlockBytesOverTierBandwidth) {
  const CostModel model = CostModel::Default();
  const CostModelParams& p = model.params();
  CostInput in;
  in.block_tokens = 16;
  in.total_blocks = 20;
  in.match = {.node = 1, .matched = 14, .per_tier = {4, 9, 1}, .slowest = Tier::kSsd};
  const CostBreakdown b = model.Predict(in);
  EXPECT_NEAR(b.load_ms,
              9 * kBlockBytes16 / (p.dram_gbps * 1e6) + 1 * kBlockBytes16 / (p.ssd_gbps * 1e6),
              1e-9);
  EXPECT_EQ(b.cached_blocks, 14u);
  EXPECT_DOUBLE_EQ(b.recompute_ms, model.PrefillMs(14 * 16, 6 * 16));
}

TEST(CostModelTest, AHitSlowerToLoadThanToRecomputeIsIgnored) {
  const CostModel model = CostModel::Default();
  CostInput in;
  in.block_tokens = 512;
  in.total_blocks = 8;
  in.match = {.node = 1, .matched = 8, .per_tier = {0, 0, 8}, .slowest = Tier::kSsd};
  const CostBreakdown b = model.Predict(in);
  EXPECT_EQ(b.cached_blocks, 0u);
  EXPECT_EQ(b.load_ms, 0);
  EXPECT_DOUBLE_EQ(b.recompute_ms, model.PrefillMs(0, 8 * 512));
  EXPECT_DOUBLE_EQ(b.total_ms, b.recompute_ms);
}

TEST(CostModelTest, FullHitStillComputesTheLastToken) {
  const CostModel model = CostModel::Default();
  CostInput in;
  in.block_tokens = 16;
  in.total_blocks = 8;
  in.match = {.node = 1, .matched = 8, .per_tier = {8, 0, 0}};
  const CostBreakdown b = model.Predict(in);
  EXPECT_DOUBLE_EQ(b.recompute_ms, model.PrefillMs(127, 1));
  EXPECT_GT(b.recompute_ms, 0);
}

TEST(CostModelTest, PeerFetchTakenWhenItBeatsRecompute) {
  const CostModel model = CostModel::Default();
  const CostModelParams& p = model.params();
  // A 32k-token prefix (64 blocks of 512) in another node's HBM; 512 new tokens.
  const std::vector<NodeMatch> holders = {{.node = 7, .matched = 64, .per_tier = {64, 0, 0}}};
  CostInput in;
  in.block_tokens = 512;
  in.total_blocks = 65;
  in.match.node = 2;
  in.holders = holders;
  const CostBreakdown b = model.Predict(in);
  EXPECT_EQ(b.peer, 7u);
  EXPECT_EQ(b.peer_blocks, 64u);
  EXPECT_EQ(b.cached_blocks, 0u);
  const double bytes = 64 * 512 * 131072.0;
  EXPECT_NEAR(b.peer_ms, p.peer_rtt_ms + bytes / (p.peer_gbps * 1e6), 1e-9);
  EXPECT_DOUBLE_EQ(b.recompute_ms, model.PrefillMs(32768, 512));
  EXPECT_LT(b.total_ms, model.PrefillMs(0, 65 * 512));
}

// With holders sorted longest first the peer search stops early; it must find the same peer.
TEST(CostModelTest, SortedHoldersGiveTheSamePredictionAsUnsorted) {
  const CostModel model = CostModel::Default();
  std::vector<NodeMatch> holders = {
      {.node = 3, .matched = 8, .per_tier = {0, 8, 0}},
      {.node = 2, .matched = 8, .per_tier = {8, 0, 0}},
      {.node = 7, .matched = 40, .per_tier = {30, 10, 0}, .slowest = Tier::kDram},
      {.node = 5, .matched = 24, .per_tier = {24, 0, 0}},
      {.node = 9, .matched = 2, .per_tier = {2, 0, 0}}};
  CostInput in;
  in.block_tokens = 512;
  in.total_blocks = 48;
  in.match = holders[1];
  in.holders = holders;
  const CostBreakdown unsorted = model.Predict(in);
  std::sort(holders.begin(), holders.end(),
            [](const NodeMatch& a, const NodeMatch& b) { return a.matched > b.matched; });
  in.holders = holders;
  in.holders_longest_first = true;
  const CostBreakdown sorted = model.Predict(in);
  EXPECT_EQ(sorted.peer, unsorted.peer);
  EXPECT_EQ(sorted.peer, 7u);
  EXPECT_DOUBLE_EQ(sorted.total_ms, unsorted.total_ms);
}

TEST(CostModelTest, PeerFetchSkippedWhenRecomputeIsCheaper) {
  const CostModel model = CostModel::Default();
  // One 16-token block on a peer's SSD: ~2 ms to fetch, ~0.3 ms to recompute.
  const std::vector<NodeMatch> holders = {
      {.node = 7, .matched = 1, .per_tier = {0, 0, 1}, .slowest = Tier::kSsd}};
  CostInput in;
  in.block_tokens = 16;
  in.total_blocks = 4;
  in.match.node = 2;
  in.holders = holders;
  const CostBreakdown b = model.Predict(in);
  EXPECT_EQ(b.peer_blocks, 0u);
  EXPECT_EQ(b.peer, kNoSlot);
  EXPECT_EQ(b.peer_ms, 0);
  EXPECT_DOUBLE_EQ(b.total_ms, model.PrefillMs(0, 64));
}

TEST(CostModelTest, PeerFetchPrefersTheFasterSourceAndSkipsShorterOnesAndItself) {
  const CostModel model = CostModel::Default();
  const std::vector<NodeMatch> holders = {
      {.node = 2, .matched = 12, .per_tier = {12, 0, 0}},  // the candidate itself
      {.node = 3, .matched = 40, .per_tier = {0, 0, 40}, .slowest = Tier::kSsd},
      {.node = 4, .matched = 40, .per_tier = {0, 40, 0}, .slowest = Tier::kDram},
      {.node = 5, .matched = 10, .per_tier = {10, 0, 0}},  // shorter than the candidate's match
  };
  CostInput in;
  in.block_tokens = 512;
  in.total_blocks = 48;
  in.match = {.node = 2, .matched = 12, .per_tier = {12, 0, 0}};
  in.holders = holders;
  const CostBreakdown b = model.Predict(in);
  EXPECT_EQ(b.peer, 4u);
  EXPECT_EQ(b.peer_blocks, 28u);
  EXPECT_EQ(b.cached_blocks, 12u);
}

TEST(CostModelTest, PeerTailBlocksAreChargedToTheSourcesSlowestTiersFirst) {
  const CostModel model = CostModel::Default();
  const CostModelParams& p = model.params();
  // The peer holds 100 blocks, 98 in HBM and 2 on SSD; the candidate has the first 60. Of the 40 it
  // fetches, the 2 SSD ones are charged (eviction demotes a chain's tail first).
  const std::vector<NodeMatch> holders = {
      {.node = 9, .matched = 100, .per_tier = {98, 0, 2}, .slowest = Tier::kSsd}};
  CostInput in;
  in.block_tokens = 512;
  in.total_blocks = 101;
  in.match = {.node = 1, .matched = 60, .per_tier = {60, 0, 0}};
  in.holders = holders;
  const CostBreakdown b = model.Predict(in);
  ASSERT_EQ(b.peer_blocks, 40u);
  const double block = 512 * 131072.0;
  EXPECT_NEAR(b.peer_ms,
              p.peer_rtt_ms + 40 * block / (p.peer_gbps * 1e6) + 2 * block / (p.ssd_gbps * 1e6),
              1e-9);
}

}  // namespace
}  // namespace strata::router
