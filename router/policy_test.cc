#include "router/policy.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace strata::router {
namespace {

// Candidates and holders of one request, with the storage their views point into.
class Cluster {
 public:
  explicit Cluster(uint32_t blocks, uint32_t block_tokens = 16) : block_tokens_(block_tokens) {
    for (uint32_t i = 0; i < blocks; ++i) keys_.push_back(0x9e3779b97f4a7c15ull * (i + 1));
  }

  // Adds a live node holding the request's first hbm+dram+ssd blocks; returns its index.
  size_t Add(uint32_t hbm = 0, uint32_t dram = 0, uint32_t ssd = 0, NodeLoad load = {}) {
    const NodeSlot slot = static_cast<NodeSlot>(ids_.size());
    ids_.push_back(std::make_unique<std::string>("node-" + std::to_string(slot)));
    NodeMatch m{.node = slot, .matched = hbm + dram + ssd, .per_tier = {hbm, dram, ssd}};
    m.slowest = ssd > 0 ? Tier::kSsd : dram > 0 ? Tier::kDram : Tier::kHbm;
    holders_.push_back(m);
    candidates_.push_back({.node = slot, .node_id = *ids_.back(), .load = load, .match = m});
    return candidates_.size() - 1;
  }
  // A node that holds blocks but takes no requests (draining): a holder, not a candidate.
  void AddDrainingHolder(NodeMatch m) { holders_.push_back(m); }

  std::vector<Candidate>& candidates() { return candidates_; }
  std::vector<IndexKey>& keys() { return keys_; }

  RouteContext Context(uint64_t request_hash = 0) const {
    return {.keys = keys_,
            .prompt_tokens = 0,
            .block_tokens = block_tokens_,
            .request_hash = request_hash,
            .candidates = candidates_,
            .holders = holders_};
  }

 private:
  uint32_t block_tokens_;
  std::vector<IndexKey> keys_;
  std::vector<std::unique_ptr<std::string>> ids_;
  std::vector<Candidate> candidates_;
  std::vector<NodeMatch> holders_;
};

std::unique_ptr<Policy> Make(std::string_view name, const CostModel* model, uint64_t seed = 0) {
  auto policy = MakePolicy(name, model, seed);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return std::move(policy).value();
}

class PolicyTest : public ::testing::Test {
 protected:
  const CostModel model_ = CostModel::Default();
};

TEST_F(PolicyTest, NamesAreTheFiveKnownPoliciesInOrder) {
  const auto names = PolicyNames();
  ASSERT_EQ(names.size(), 5u);
  EXPECT_EQ(names[0], "locality");
  EXPECT_EQ(names[1], "round_robin");
  EXPECT_EQ(names[2], "random");
  EXPECT_EQ(names[3], "least_loaded");
  EXPECT_EQ(names[4], "consistent_hash");
  for (std::string_view name : names) EXPECT_EQ(Make(name, &model_)->name(), name);
}

TEST_F(PolicyTest, UnknownNameIsInvalidArgumentListingTheKnownOnes) {
  auto policy = MakePolicy("fastest", &model_);
  ASSERT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(policy.status().message());
  EXPECT_NE(message.find("fastest"), std::string::npos);
  for (std::string_view name : PolicyNames()) {
    EXPECT_NE(message.find(std::string(name)), std::string::npos) << name;
  }
  EXPECT_EQ(MakePolicy("locality", nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PolicyTest, CostInputOfCopiesTheRequestAndTheCandidate) {
  Cluster cluster(10, 256);
  cluster.Add(0, 3, 0, {.queued_requests = 2, .prefill_tokens_in_flight = 99});
  cluster.Add(1, 0, 0);
  RouteContext ctx = cluster.Context();
  ctx.prompt_tokens = 2600;
  const CostInput in = CostInputOf(ctx, ctx.candidates[0]);
  EXPECT_EQ(in.prompt_tokens, 2600u);
  EXPECT_EQ(in.block_tokens, 256u);
  EXPECT_EQ(in.total_blocks, 10u);
  EXPECT_EQ(in.load.queued_requests, 2u);
  EXPECT_EQ(in.load.prefill_tokens_in_flight, 99u);
  EXPECT_EQ(in.match.matched, 3u);
  EXPECT_EQ(in.match.per_tier[1], 3u);
  EXPECT_EQ(in.holders.size(), 2u);
}

TEST_F(PolicyTest, LocalityPrefersTheDeeperMatch) {
  Cluster cluster(16);
  cluster.Add(/*hbm=*/4);
  const size_t deep = cluster.Add(/*hbm=*/8);
  cluster.Add();
  EXPECT_EQ(Make("locality", &model_)->Select(cluster.Context()).index, deep);
}

TEST_F(PolicyTest, LocalityPrefersDramOverSsdAtEqualDepth) {
  Cluster cluster(16);
  cluster.Add(0, 0, /*ssd=*/8);
  const size_t dram = cluster.Add(0, /*dram=*/8, 0);
  EXPECT_EQ(Make("locality", &model_)->Select(cluster.Context()).index, dram);
}

// The dev machine's disk (1.07 GB/s into HBM) moves a block more slowly than the H100 recomputes
// it at any depth reached by an SSD-only prefix, so such a match alone never pays: the holder is
// predicted as if cold (it would recompute), never worse than a node without the prefix.
TEST_F(PolicyTest, LocalityRecomputesRatherThanLoadAnSsdOnlyPrefix) {
  Cluster cluster(65, 512);
  const size_t ssd = cluster.Add(0, 0, /*ssd=*/64);  // 32k tokens on SSD
  const size_t empty = cluster.Add();
  const RouteContext ctx = cluster.Context();
  const CostBreakdown with_ssd = model_.Predict(CostInputOf(ctx, ctx.candidates[ssd]));
  const CostBreakdown cold = model_.Predict(CostInputOf(ctx, ctx.candidates[empty]));
  EXPECT_EQ(with_ssd.cached_blocks, 0u);
  EXPECT_EQ(with_ssd.load_ms, 0);
  EXPECT_DOUBLE_EQ(with_ssd.total_ms, cold.total_ms);
}

// DESIGN section 1: SSD reuse pays only behind a deep prefix in faster tiers. One more 512-token
// block from SSD (63 ms) loses to recomputing it after 8k cached tokens and wins after 64k.
TEST_F(PolicyTest, LocalityTakesAnSsdTailOnlyBehindADeepDramPrefix) {
  for (const auto& [dram_blocks, ssd_wins] : {std::pair{16u, false}, std::pair{128u, true}}) {
    Cluster cluster(dram_blocks + 2, 512);
    const size_t with_ssd_tail = cluster.Add(0, dram_blocks, /*ssd=*/1);
    const size_t dram_only = cluster.Add(0, dram_blocks, 0);
    EXPECT_EQ(Make("locality", &model_)->Select(cluster.Context()).index,
              ssd_wins ? with_ssd_tail : dram_only)
        << dram_blocks * 512 << " cached tokens";
  }
}

TEST_F(PolicyTest, LocalitySendsABusyHoldersPrefixToAnIdleNodeByPeerFetch) {
  Cluster cluster(65, 512);
  cluster.Add(/*hbm=*/64, 0, 0,
              {.queued_requests = 8, .running_requests = 8, .prefill_tokens_in_flight = 200000});
  const size_t idle = cluster.Add();
  const RouteContext ctx = cluster.Context();
  ASSERT_EQ(Make("locality", &model_)->Select(ctx).index, idle);
  const CostBreakdown b = model_.Predict(CostInputOf(ctx, ctx.candidates[idle]));
  EXPECT_EQ(b.peer, ctx.candidates[0].node);
  EXPECT_EQ(b.peer_blocks, 64u);
  EXPECT_LT(b.total_ms, model_.PrefillMs(0, 65 * 512));
}

TEST_F(PolicyTest, LocalityBreaksTiesByLoadThenSlot) {
  // No per-request queueing cost, so requests ahead do not change the prediction: a pure tie.
  CostModelParams params = model_.params();
  params.per_request_queue_ms = 0;
  const CostModel flat(params);
  Cluster cluster(8);
  cluster.Add(0, 0, 0, {.queued_requests = 3});
  cluster.Add(0, 0, 0, {.running_requests = 1});
  cluster.Add(0, 0, 0, {.queued_requests = 1});
  cluster.Add(0, 0, 0, {.queued_requests = 5});
  EXPECT_EQ(Make("locality", &flat)->Select(cluster.Context()).index, 1u);
}

// A shared system prompt must not pull all traffic to the node that holds it: each request routed
// there raises its queueing term (the router core adds routed requests to the candidate's load
// until the next heartbeat; here the test does), until the other nodes' recompute is cheaper.
TEST_F(PolicyTest, LocalitySpreadsAHotSharedPrefixOverNodes) {
  Cluster cluster(16, 512);
  const size_t holder = cluster.Add(0, /*dram=*/8, 0);  // the system prompt: 4k tokens
  cluster.Add();
  cluster.Add();
  auto policy = Make("locality", &model_);
  ASSERT_EQ(policy->Select(cluster.Context()).index, holder);

  std::vector<int> routed(3, 0);
  for (int request = 0; request < 30; ++request) {
    const RouteContext ctx = cluster.Context(request);
    const Choice choice = policy->Select(ctx);
    policy->Commit(ctx, choice);
    const CostBreakdown b = model_.Predict(CostInputOf(ctx, ctx.candidates[choice.index]));
    const uint64_t cached = (b.cached_blocks + b.peer_blocks) * 512;
    NodeLoad& load = cluster.candidates()[choice.index].load;
    load.queued_requests += 1;
    load.prefill_tokens_in_flight += 16 * 512 - cached;
    ++routed[choice.index];
  }
  // The model gives 15 / 8 / 7; ignoring the queue would give 30 / 0 / 0.
  for (int n : routed) EXPECT_GE(n, 5);
  EXPECT_LE(routed[holder], 18);  // 60%
  EXPECT_GE(routed[holder], std::max(routed[1], routed[2]));
}

TEST_F(PolicyTest, SelectHasNoSideEffects) {
  Cluster cluster(8);
  cluster.Add(2, 0, 0, {.queued_requests = 1});
  cluster.Add(0, 4, 0);
  cluster.Add(0, 0, 6, {.running_requests = 2});
  for (std::string_view name : PolicyNames()) {
    auto policy = Make(name, &model_, 7);
    const RouteContext ctx = cluster.Context(1234);
    const size_t first = policy->Select(ctx).index;
    for (int i = 0; i < 5; ++i) EXPECT_EQ(policy->Select(ctx).index, first) << name;
  }
}

TEST_F(PolicyTest, RoundRobinAdvancesOnlyOnCommit) {
  Cluster cluster(4);
  cluster.Add();
  cluster.Add();
  cluster.Add();
  auto policy = Make("round_robin", &model_);
  const RouteContext ctx = cluster.Context();
  std::vector<size_t> picks;
  for (int i = 0; i < 6; ++i) {
    const Choice c = policy->Select(ctx);
    EXPECT_EQ(policy->Select(ctx).index, c.index);
    policy->Commit(ctx, c);
    picks.push_back(c.index);
  }
  EXPECT_EQ(picks, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST_F(PolicyTest, RandomIsDeterministicPerRequestHashAndSeed) {
  Cluster cluster(4);
  for (int i = 0; i < 5; ++i) cluster.Add();
  auto a = Make("random", &model_, 1);
  auto b = Make("random", &model_, 1);
  auto other_seed = Make("random", &model_, 2);
  int differs = 0;
  for (uint64_t h = 0; h < 200; ++h) {
    const RouteContext ctx = cluster.Context(h);
    EXPECT_EQ(a->Select(ctx).index, b->Select(ctx).index);
    if (a->Select(ctx).index != other_seed->Select(ctx).index) ++differs;
  }
  EXPECT_GT(differs, 100);  // about 4/5 of 200 when the seed matters
}

TEST_F(PolicyTest, RandomIsRoughlyUniformOverSequentialRequestHashes) {
  Cluster cluster(4);
  for (int i = 0; i < 4; ++i) cluster.Add();
  auto policy = Make("random", &model_, 42);
  std::vector<int> counts(4, 0);
  for (uint64_t h = 0; h < 40000; ++h) ++counts[policy->Select(cluster.Context(h)).index];
  // Each count is Binomial(40000, 1/4): sd 87; 400 is more than 4.5 sd.
  for (int n : counts) EXPECT_NEAR(n, 10000, 400);
}

TEST_F(PolicyTest, LeastLoadedPicksFewestRequestsThenPrefillTokensThenSlot) {
  Cluster cluster(8);
  cluster.Add(8, 0, 0, {.queued_requests = 2});
  cluster.Add(0, 0, 0, {.queued_requests = 1, .prefill_tokens_in_flight = 500});
  cluster.Add(0, 0, 0, {.running_requests = 1, .prefill_tokens_in_flight = 100});
  cluster.Add(0, 0, 0, {.queued_requests = 1, .prefill_tokens_in_flight = 100});
  auto policy = Make("least_loaded", &model_);
  EXPECT_EQ(policy->Select(cluster.Context()).index, 2u);
  cluster.candidates()[2].load.running_requests = 0;
  EXPECT_EQ(policy->Select(cluster.Context()).index, 2u);
  cluster.candidates()[2].load.running_requests = 5;
  EXPECT_EQ(policy->Select(cluster.Context()).index, 3u);
}

// Routes `requests` distinct chains with consistent_hash and returns the chosen node ids.
std::vector<std::string> HashRoute(const std::vector<Candidate>& candidates, int requests) {
  auto policy = MakePolicy("consistent_hash", nullptr).value();
  std::vector<std::string> out;
  for (int r = 0; r < requests; ++r) {
    const std::vector<IndexKey> keys = {0xabcdull * r + 1, 77, 0x1234567ull * r};
    RouteContext ctx;
    ctx.keys = keys;
    ctx.candidates = candidates;
    out.emplace_back(candidates[policy->Select(ctx).index].node_id);
  }
  return out;
}

TEST_F(PolicyTest, ConsistentHashMovesOnlyTheRemovedNodesRequests) {
  Cluster cluster(1);
  for (int i = 0; i < 8; ++i) cluster.Add();
  const std::vector<Candidate> all = cluster.candidates();
  const std::vector<std::string> before = HashRoute(all, 4000);
  std::map<std::string, int> per_node;
  for (const std::string& id : before) ++per_node[id];
  ASSERT_EQ(per_node.size(), 8u);
  for (const auto& [id, n] : per_node) EXPECT_GT(n, 300) << id;  // 500 each on average

  std::vector<Candidate> without = all;
  const std::string removed(without[3].node_id);
  without.erase(without.begin() + 3);
  const std::vector<std::string> after = HashRoute(without, 4000);
  int moved = 0;
  for (size_t r = 0; r < before.size(); ++r) {
    if (before[r] == removed) {
      EXPECT_NE(after[r], removed);
      ++moved;
    } else {
      EXPECT_EQ(after[r], before[r]) << "request " << r;
    }
  }
  EXPECT_EQ(moved, per_node[removed]);
}

TEST_F(PolicyTest, ConsistentHashDependsOnTheFirstFourBlocksAndNotOnCandidateOrder) {
  Cluster cluster(6);
  for (int i = 0; i < 8; ++i) cluster.Add();
  auto policy = Make("consistent_hash", &model_);
  const std::string chosen(cluster.candidates()[policy->Select(cluster.Context()).index].node_id);

  cluster.keys()[5] ^= 0xffff;  // a different tail: same node
  cluster.keys()[4] ^= 0xffff;
  EXPECT_EQ(cluster.candidates()[policy->Select(cluster.Context()).index].node_id, chosen);
  std::reverse(cluster.candidates().begin(), cluster.candidates().end());
  EXPECT_EQ(cluster.candidates()[policy->Select(cluster.Context()).index].node_id, chosen);

  // Changing the first blocks re-places the request (over many prefixes, it must move sometimes).
  std::set<std::string> seen;
  for (IndexKey k = 1; k <= 64; ++k) {
    cluster.keys()[0] = k;
    seen.emplace(cluster.candidates()[policy->Select(cluster.Context()).index].node_id);
  }
  EXPECT_GE(seen.size(), 6u);
}

}  // namespace
}  // namespace strata::router
