#include "bench/engine.h"

#include <vector>

#include "gtest/gtest.h"

namespace strata::bench {
namespace {

using common::ChainHash;

ChainHash Key(int i) {
  ChainHash h;
  h.bytes[0] = static_cast<uint8_t>(i);
  h.bytes[1] = static_cast<uint8_t>(i >> 8);
  return h;
}

std::vector<ChainHash> Chain(int first, int n) {
  std::vector<ChainHash> c;
  for (int i = 0; i < n; ++i) c.push_back(Key(first + i));
  return c;
}

// Tiers whose contents the test sets: `dram` blocks found beyond HBM, then `ssd` blocks.
class FakeTiers : public TierAccess {
 public:
  uint32_t dram = 0, ssd = 0;
  std::vector<ChainHash> reads, writes, hbm_stored, hbm_removed;
  std::vector<bool> Match(int, std::span<const ChainHash> chain) override {
    std::vector<bool> out;
    for (uint32_t i = 0; i < dram + ssd && i < chain.size(); ++i) out.push_back(i >= dram);
    return out;
  }
  void Read(int, std::span<const ChainHash> c) override { reads.insert(reads.end(), c.begin(), c.end()); }
  void ReadPeer(int, std::span<const ChainHash>) override {}
  void Write(int, std::span<const ChainHash> c, uint32_t) override {
    writes.insert(writes.end(), c.begin(), c.end());
  }
  void HbmStored(int, std::span<const ChainHash> c) override {
    hbm_stored.insert(hbm_stored.end(), c.begin(), c.end());
  }
  void HbmRemoved(int, std::span<const ChainHash> c) override {
    hbm_removed.insert(hbm_removed.end(), c.begin(), c.end());
  }
};

EngineParams Params(uint64_t pool_blocks = 0) {
  absl::StatusOr<EngineParams> p = LoadEngineParams();
  EXPECT_TRUE(p.ok()) << p.status();
  if (pool_blocks > 0) {
    p->gpu_memory_bytes = pool_blocks * 512 * p->cost.params().kv_bytes_per_token;
    p->memory_utilization = 1;
    p->weights_bytes = 0;
  }
  return *p;
}

EngineRequest Request(uint32_t id, double at, uint32_t input, uint32_t output,
                      std::vector<ChainHash> chain) {
  EngineRequest r;
  r.id = id;
  r.arrival_ms = at;
  r.input_tokens = input;
  r.output_tokens = output;
  r.chain = std::move(chain);
  return r;
}

// Runs the engine until idle; returns results in finishing order.
std::vector<RequestResult> Drain(Engine& e) {
  std::vector<RequestResult> out;
  while (e.NextEventMs().has_value()) {
    for (auto& r : e.Advance()) out.push_back(r);
  }
  return out;
}

constexpr double kTol = 1e-9;

TEST(EngineTest, PoolHoldsGpuMemoryTimesUtilizationMinusWeightsInBlocks) {
  const EngineParams p = Params();
  FakeTiers tiers;
  Engine e(0, p, EngineOptions{512, LoadPolicy::kWhenFaster, 6.8, true}, &tiers);
  const double expected = (80.0 * (1ull << 30) * 0.9 - 8.03e9 * 2) / (512.0 * 131072);
  EXPECT_EQ(e.pool_blocks(), static_cast<uint64_t>(expected));
}

TEST(EngineTest, ColdPromptTakesOnePrefillStepThenDecodeSteps) {
  const EngineParams p = Params();
  FakeTiers tiers;
  Engine e(0, p, EngineOptions{512, LoadPolicy::kWhenFaster, 6.8, false}, &tiers);
  e.Enqueue(Request(7, 100, 1024, 3, Chain(0, 2)), 100);
  const std::vector<RequestResult> done = Drain(e);
  ASSERT_EQ(done.size(), 1u);
  const double prefill = p.cost.PrefillMs(0, 1024);
  const double d1 = p.decode_d0_ms + p.decode_ctx_ms * 1025;
  const double d2 = p.decode_d0_ms + p.decode_ctx_ms * 1026;
  EXPECT_NEAR(done[0].first_token_ms, 100 + prefill, kTol);
  EXPECT_NEAR(done[0].finished_ms, 100 + prefill + d1 + d2, kTol);
  EXPECT_EQ(done[0].prefill_tokens, 1024u);
  EXPECT_EQ(done[0].hit_blocks[0], 0u);
  EXPECT_EQ(tiers.hbm_stored.size(), 2u);
  EXPECT_TRUE(tiers.writes.empty());  // HBM only: nothing written through
}

TEST(EngineTest, RepeatedPromptHitsHbmAndRecomputesOnlyTheLastToken) {
  const EngineParams p = Params();
  FakeTiers tiers;
  Engine e(0, p, EngineOptions{512, LoadPolicy::kWhenFaster, 6.8, false}, &tiers);
  e.Enqueue(Request(0, 0, 1024, 1, Chain(0, 2)), 0);
  Drain(e);
  e.Enqueue(Request(1, 1000, 1024, 1, Chain(0, 2)), 1000);
  const std::vector<RequestResult> done = Drain(e);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].hit_blocks[0], 2u);
  EXPECT_EQ(done[0].cached_tokens, 1023u);
  EXPECT_NEAR(done[0].first_token_ms, 1000 + p.cost.PrefillMs(1023, 1), kTol);
}

TEST(EngineTest, LongPromptIsPrefilledInChunksOfTheTokenBudget) {
  const EngineParams p = Params();
  ASSERT_EQ(p.max_batched_tokens, 8192u);
  FakeTiers tiers;
  Engine e(0, p, EngineOptions{512, LoadPolicy::kWhenFaster, 6.8, false}, &tiers);
  e.Enqueue(Request(0, 0, 10000, 1, Chain(0, 20)), 0);
  const std::vector<RequestResult> done = Drain(e);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NEAR(done[0].first_token_ms, p.cost.PrefillMs(0, 8192) + p.cost.PrefillMs(8192, 1808),
              kTol);
  EXPECT_EQ(e.steps(), 2u);
}

TEST(EngineTest, DramHitCostsItsBytesOverPcieBeforePrefill) {
  const EngineParams p = Params();
  FakeTiers tiers;
  tiers.dram = 2;
  Engine e(0, p, EngineOptions{512, LoadPolicy::kAlways, 6.8, true}, &tiers);
  e.Enqueue(Request(0, 0, 1024, 1, Chain(0, 2)), 0);
  const std::vector<RequestResult> done = Drain(e);
  ASSERT_EQ(done.size(), 1u);
  const double load = 2 * 512.0 * 131072 / 1e6 / p.cost.params().dram_gbps;
  EXPECT_NEAR(done[0].load_ms, load, kTol);
  EXPECT_EQ(done[0].hit_blocks[1], 2u);
  EXPECT_NEAR(done[0].first_token_ms, load + p.cost.PrefillMs(1023, 1), kTol);
  EXPECT_EQ(tiers.reads.size(), 2u);
  EXPECT_TRUE(tiers.writes.empty());  // the tiers already hold both blocks
}

TEST(EngineTest, SlowSsdHitIsRecomputedWhenThatIsFaster) {
  const EngineParams p = Params();
  FakeTiers tiers;
  tiers.ssd = 1;
  // 0.01 GB/s: one 64 MiB block takes 6.7 s to read, far more than recomputing 512 tokens.
  Engine e(0, p, EngineOptions{512, LoadPolicy::kWhenFaster, 0.01, true}, &tiers);
  e.Enqueue(Request(0, 0, 1024, 1, Chain(0, 2)), 0);
  const std::vector<RequestResult> done = Drain(e);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].hit_blocks[2], 0u);
  EXPECT_NEAR(done[0].first_token_ms, p.cost.PrefillMs(0, 1024), kTol);
  EXPECT_EQ(tiers.writes.size(), 1u);  // the block the tiers lacked is written through
}

TEST(EngineTest, RequestWaitsWhileHbmIsFullAndCachedBlocksAreEvictedForIt) {
  const EngineParams p = Params(/*pool_blocks=*/4);
  FakeTiers tiers;
  Engine e(0, p, EngineOptions{512, LoadPolicy::kWhenFaster, 6.8, false}, &tiers);
  ASSERT_EQ(e.pool_blocks(), 4u);
  e.Enqueue(Request(0, 0, 1024, 100, Chain(0, 2)), 0);   // 3 blocks with its output
  e.Enqueue(Request(1, 0, 1024, 100, Chain(10, 2)), 0);  // 3 more: must wait
  EXPECT_EQ(e.Load().queued_requests, 1u);
  EXPECT_EQ(e.Load().running_requests, 1u);
  const std::vector<RequestResult> done = Drain(e);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].id, 1u);
  EXPECT_NEAR(done[1].admitted_ms, done[0].finished_ms, kTol);
  // Request 0's cached blocks fill 2 of the 4; request 1 needs 3, so one goes: the chain's tail.
  ASSERT_EQ(tiers.hbm_removed.size(), 1u);
  EXPECT_EQ(tiers.hbm_removed[0], Key(1));
}

TEST(EngineTest, DecodeAndPrefillShareAStep) {
  const EngineParams p = Params();
  FakeTiers tiers;
  Engine e(0, p, EngineOptions{512, LoadPolicy::kWhenFaster, 6.8, false}, &tiers);
  e.Enqueue(Request(0, 0, 512, 5, Chain(0, 1)), 0);
  ASSERT_TRUE(e.NextEventMs().has_value());
  const double first_step = *e.NextEventMs();
  e.Enqueue(Request(1, 1, 512, 1, Chain(10, 1)), 1);  // arrives during the first step
  e.Advance();                                        // request 0 prefilled; step 2 starts
  const double t0 = p.cost.params().prefill_t0_ms;
  const double expected = t0 + (p.cost.PrefillMs(0, 512) - t0) +
                          p.DecodeMs(1, 513, /*with_prefill=*/true);
  EXPECT_NEAR(*e.NextEventMs() - first_step, expected, kTol);
}

}  // namespace
}  // namespace strata::bench
