#include "router/router_core.h"

#include <map>

#include "gtest/gtest.h"

namespace strata::router {
namespace {

// Keys of a chain: distinct per (chain, position); chains share a head when `head` > 0.
std::vector<IndexKey> Chain(uint64_t chain, size_t blocks, size_t head = 0) {
  std::vector<IndexKey> keys;
  for (size_t i = 0; i < blocks; ++i) {
    keys.push_back(i < head ? 0x1000'0000ull + i : (chain << 20) + i + 1);
  }
  return keys;
}

class RouterCoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Make("locality"); }

  void Make(const std::string& experiment, RouterOptions o = {}) {
    o.experiment = experiment;
    auto core = RouterCore::Create(o, CostModel::Default(), &clock_);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = std::move(*core);
  }

  // Registers a node and installs a snapshot holding `keys` in `tier`.
  NodeSlot AddNode(const std::string& id, std::vector<IndexKey> keys = {}, Tier tier = Tier::kDram,
                   uint64_t epoch = 1) {
    auto r = core_->RegisterNode(id, id + ":7070", epoch, {});
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<IngestEvent> events;
    if (!keys.empty()) events.push_back({IngestEvent::Kind::kStored, tier, std::move(keys)});
    IngestReply reply = core_->ingest().ApplySnapshotChunk(r->slot, epoch, 0, 0, true, events);
    EXPECT_EQ(reply.result, IngestReply::Result::kApplied) << reply.message;
    return r->slot;
  }

  RouteDecision Route(std::vector<IndexKey> keys, const std::string& session = "",
                      const std::string& policy = "") {
    RouteQuery q;
    q.keys = std::move(keys);
    q.block_tokens = 512;
    q.split_key = session;
    q.request_hash = q.keys.empty() ? 0 : q.keys.back();
    q.policy = policy;
    auto d = core_->Route(q);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : RouteDecision{};
  }

  common::ManualClock clock_{absl::FromUnixSeconds(1'700'000'000)};
  std::unique_ptr<RouterCore> core_;
};

TEST_F(RouterCoreTest, RouteFollowsTheDataWithMatchCountsPerTier) {
  AddNode("a");
  AddNode("b", Chain(1, 6), Tier::kDram);
  AddNode("c", Chain(2, 6), Tier::kSsd);
  RouteDecision d = Route(Chain(1, 8));
  ASSERT_NE(d.chosen, nullptr);
  EXPECT_EQ(d.chosen->node_id, "b");
  EXPECT_EQ(d.chosen->endpoint, "b:7070");
  EXPECT_EQ(d.match.matched, 6u);
  EXPECT_EQ(d.match.per_tier[static_cast<int>(Tier::kDram)], 6u);
  EXPECT_EQ(d.total_blocks, 8u);
  EXPECT_EQ(d.policy, "locality");
  EXPECT_GT(d.decision_id, 0u);
  EXPECT_GT(d.cost.total_ms, 0);
}

TEST_F(RouterCoreTest, PredictionFavoursTheFasterTierAtEqualDepth) {
  AddNode("ssd-node", Chain(1, 8), Tier::kSsd);
  AddNode("dram-node", Chain(1, 8), Tier::kDram);
  EXPECT_EQ(Route(Chain(1, 8)).chosen->node_id, "dram-node");
}

TEST_F(RouterCoreTest, MalformedRequestsAndNoNodesGetClearErrors) {
  RouteQuery empty;
  EXPECT_EQ(core_->Route(empty).status().code(), absl::StatusCode::kInvalidArgument);
  RouteQuery q;
  q.keys = Chain(1, 2);
  EXPECT_EQ(core_->Route(q).status().code(), absl::StatusCode::kUnavailable);
  AddNode("a");
  q.policy = "fastest";
  auto bad = core_->Route(q);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("round_robin"), std::string::npos);
  RouteQuery big;
  big.keys = Chain(1, core_->options().max_request_blocks + 1);
  EXPECT_EQ(core_->Route(big).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RouterCoreTest, DrainingNodeGetsNoNewRequestsButStillServesAsPeer) {
  AddNode("a", Chain(1, 8), Tier::kDram);
  AddNode("b");
  NodeLoad draining;
  draining.draining = true;
  ASSERT_TRUE(core_->Heartbeat("a", 1, draining).ok());
  for (int i = 0; i < 5; ++i) {
    RouteDecision d = Route(Chain(1, 8));
    EXPECT_EQ(d.chosen->node_id, "b");
    ASSERT_FALSE(d.peers.empty());
    EXPECT_EQ(d.peers[0].member->node_id, "a");
    EXPECT_EQ(d.peers[0].from_block, 0u);
    EXPECT_EQ(d.peers[0].blocks, 8u);
  }
  ASSERT_TRUE(core_->Heartbeat("b", 1, draining).ok());
  RouteQuery q;
  q.keys = Chain(1, 8);
  EXPECT_EQ(core_->Route(q).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RouterCoreTest, SilentNodeIsRemovedAfterTheTtlAndNeverChosenAgain) {
  AddNode("a", Chain(1, 8));
  AddNode("b");
  EXPECT_EQ(Route(Chain(1, 8)).chosen->node_id, "a");
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(core_->Heartbeat("b", 1, {}).ok());
  EXPECT_TRUE(core_->ExpireNodes().empty());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(core_->Heartbeat("b", 1, {}).ok());
  EXPECT_EQ(core_->ExpireNodes(), std::vector<std::string>{"a"});
  EXPECT_EQ(core_->index().Stats().entries, 0u);
  for (int i = 0; i < 10; ++i) {
    RouteDecision d = Route(Chain(i, 8));
    EXPECT_EQ(d.chosen->node_id, "b");
    EXPECT_EQ(d.match.matched, 0u);
  }
}

TEST_F(RouterCoreTest, NodeSilentPastTheTtlIsNeitherChosenNorAPeerBeforeTheExpiryScan) {
  AddNode("a", Chain(1, 8));
  AddNode("b", Chain(1, 4));
  EXPECT_EQ(Route(Chain(1, 8)).chosen->node_id, "a");
  // Exactly the TTL (3 s by default) of silence still counts as live.
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(core_->Heartbeat("b", 1, {}).ok());
  EXPECT_EQ(Route(Chain(1, 8)).chosen->node_id, "a");
  // One step past it, with no expiry scan run: "a" is out of every route, as chosen node and as
  // the peer holding the longer prefix; its entries are still indexed until the scan.
  clock_.Advance(absl::Milliseconds(1));
  for (int i = 0; i < 5; ++i) {
    RouteDecision d = Route(Chain(1, 8));
    EXPECT_EQ(d.chosen->node_id, "b");
    EXPECT_EQ(d.match.matched, 4u);
    EXPECT_TRUE(d.peers.empty());
  }
  EXPECT_GT(core_->index().Stats().entries, 0u);
  clock_.Advance(absl::Seconds(3));
  RouteQuery q;
  q.keys = Chain(1, 8);
  auto none = core_->Route(q);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RouterCoreTest, ANewEpochDropsTheOldEntriesUntilItsSnapshot) {
  AddNode("a", Chain(1, 8));
  AddNode("b");
  auto r = core_->RegisterNode("a", "a:7070", 2, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(core_->index().NodeEntries(r->slot), 0u);
  EXPECT_FALSE(core_->ingest().Synced(r->slot));
  EXPECT_EQ(Route(Chain(1, 8)).match.matched, 0u);
  // The restarted node announces what survived on its SSD under the new epoch.
  std::vector<IngestEvent> ssd = {{IngestEvent::Kind::kStored, Tier::kSsd, Chain(1, 8)}};
  EXPECT_EQ(core_->ingest().ApplySnapshotChunk(r->slot, 2, 0, 0, true, ssd).result,
            IngestReply::Result::kApplied);
  std::vector<NodeMatch> matches;
  core_->index().Match(Chain(1, 8), &matches);
  ASSERT_EQ(matches.size(), 1u);
  EXPECT_EQ(matches[0].node, r->slot);
  EXPECT_EQ(matches[0].per_tier[static_cast<int>(Tier::kSsd)], 8u);
  // Whether an SSD hit beats recomputing is the cost model's call; the route reports it either
  // way, as the choice or as a peer.
  RouteDecision d = Route(Chain(1, 8));
  if (d.chosen->node_id != "a") {
    ASSERT_FALSE(d.peers.empty());
    EXPECT_EQ(d.peers[0].member->node_id, "a");
    EXPECT_EQ(d.peers[0].slowest, Tier::kSsd);
  }
  // An old incarnation cannot come back.
  EXPECT_EQ(core_->RegisterNode("a", "a:7070", 1, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(RouterCoreTest, SharedSystemPromptDoesNotPullEveryRequestToOneNode) {
  // Every request starts with the same 8-block system prompt, held in DRAM by node a only; tails
  // differ. No heartbeat arrives during the burst, so only the router's own bookkeeping (pending
  // load) and the peer-fetch option can spread it.
  AddNode("a", Chain(0, 8, 8), Tier::kDram);
  AddNode("b");
  AddNode("c");
  std::map<std::string, int> per_node;
  const int kRequests = 60;
  for (int i = 0; i < kRequests; ++i) {
    RouteDecision d = Route(Chain(100 + i, 16, 8));
    ++per_node[d.chosen->node_id];
  }
  EXPECT_EQ(per_node.size(), 3u) << "every node should take part of the burst";
  for (const auto& [node, n] : per_node) {
    EXPECT_LE(n, kRequests * 6 / 10) << node << " took " << n << " of " << kRequests;
  }
  // The first request of a quiet cluster goes where the prompt is.
  Make("locality");
  AddNode("a", Chain(0, 8, 8), Tier::kDram);
  AddNode("b");
  AddNode("c");
  EXPECT_EQ(Route(Chain(100, 16, 8)).chosen->node_id, "a");
}

TEST_F(RouterCoreTest, BurstSharingANewPrefixStaysWithTheNodeItWasSentTo) {
  // Nothing is indexed yet: the prefix is being computed on the first request's node. Later
  // requests of the burst share its first 60 of 64 blocks, so waiting there beats recomputing.
  // The nodes stay live (TTL past the 31 s below) without heartbeats, which would clear the
  // pending load this test looks at.
  RouterOptions o;
  o.membership.ttl = absl::Minutes(1);
  Make("locality", o);
  AddNode("a");
  AddNode("b");
  const RouteDecision d = Route(Chain(7, 64, 60));
  const std::string first = d.chosen->node_id;
  EXPECT_EQ(d.match.matched, 0u);
  for (int i = 1; i < 4; ++i) {
    clock_.Advance(absl::Milliseconds(100));
    const RouteDecision next = Route(Chain(7 + i, 64, 60));
    EXPECT_EQ(next.chosen->node_id, first) << "request " << i;
    EXPECT_EQ(next.match.matched, 0u) << "the reported match is what the index holds";
  }
  // Once the horizon passes without events confirming the blocks, the memory no longer counts:
  // the pending load booked on `first` sends the next request to the other node.
  clock_.Advance(absl::Seconds(31));
  EXPECT_NE(Route(Chain(20, 64, 60)).chosen->node_id, first);
}

TEST_F(RouterCoreTest, IndexedBlocksOutweighRememberedRoutes) {
  const NodeSlot a = AddNode("a");
  const NodeSlot b = AddNode("b");
  const std::string first = Route(Chain(7, 64, 60)).chosen->node_id;
  // The other node reports the chain (it got there some other way); the first one never does.
  const NodeSlot other = first == "a" ? b : a;
  std::vector<IngestEvent> events = {{IngestEvent::Kind::kStored, Tier::kDram, Chain(7, 64, 60)}};
  ASSERT_EQ(core_->ingest().ApplyBatch(other, 1, 1, events).result, IngestReply::Result::kApplied);
  ASSERT_TRUE(core_->Heartbeat("a", 1, {}).ok());
  ASSERT_TRUE(core_->Heartbeat("b", 1, {}).ok());
  const RouteDecision d = Route(Chain(7, 64, 60));
  EXPECT_NE(d.chosen->node_id, first) << "a prediction beat confirmed blocks";
  EXPECT_EQ(d.match.matched, 64u);
}

TEST_F(RouterCoreTest, WithoutRouteMemoryABurstSpreadsByPendingLoad) {
  RouterOptions o;
  o.route_memory.horizon = absl::ZeroDuration();
  Make("locality", o);
  AddNode("a");
  AddNode("b");
  const std::string first = Route(Chain(7, 64, 60)).chosen->node_id;
  EXPECT_NE(Route(Chain(8, 64, 60)).chosen->node_id, first);
}

TEST_F(RouterCoreTest, HeartbeatReplacesPendingLoadWithTheReportedOne) {
  auto a = AddNode("a", Chain(0, 8, 8));
  AddNode("b");
  for (int i = 0; i < 5; ++i) Route(Chain(100 + i, 16, 8));
  const Member* member = core_->membership().View()->Find(a);
  EXPECT_GT(core_->membership().EffectiveLoad(*member).queued_requests, 0u);
  ASSERT_TRUE(core_->Heartbeat("a", 1, {}).ok());
  member = core_->membership().View()->Find(a);
  EXPECT_EQ(core_->membership().EffectiveLoad(*member).queued_requests, 0u);
}

TEST_F(RouterCoreTest, ExperimentSplitsBySessionScoresEveryArmInShadowAndTakesOutcomes) {
  Make("locality=50,round_robin=50");
  AddNode("a", Chain(1, 8));
  AddNode("b");
  AddNode("c");
  std::map<std::string, std::string> policy_of_session;
  for (int i = 0; i < 200; ++i) {
    const std::string session = "s" + std::to_string(i % 20);
    RouteDecision d = Route(Chain(1, 8), session);
    auto [it, inserted] = policy_of_session.emplace(session, d.policy);
    EXPECT_EQ(it->second, d.policy) << "session " << session << " changed policy";
    ASSERT_EQ(d.shadow.size(), 2u);
    EXPECT_EQ(d.shadow[0].policy, "locality");
    EXPECT_EQ(d.shadow[1].policy, "round_robin");
    EXPECT_EQ(d.shadow[0].member->node_id, "a");  // locality always finds the data in shadow too
    EXPECT_EQ(d.shadow[0].matched_blocks, 8u);
    ASSERT_TRUE(core_->ReportOutcome(d.decision_id, 10.0 + i % 7).ok());
    ASSERT_TRUE(core_->Heartbeat("a", 1, {}).ok());  // keep the burst from loading node a
  }
  ExperimentReportData r = core_->ExperimentReport();
  EXPECT_EQ(r.requests, 200u);
  ASSERT_EQ(r.policies.size(), 2u);
  EXPECT_GT(r.policies[0].decisions, 0u);
  EXPECT_GT(r.policies[1].decisions, 0u);
  EXPECT_EQ(r.policies[0].decisions + r.policies[1].decisions, 200u);
  EXPECT_EQ(r.policies[0].outcomes, r.policies[0].decisions);
  EXPECT_EQ(r.policies[0].shadow_requests, 200u);
  EXPECT_EQ(r.policies[1].shadow_requests, 200u);
  EXPECT_DOUBLE_EQ(r.policies[0].mean_shadow_hit_blocks, 8.0);
  EXPECT_LT(r.policies[1].mean_shadow_hit_blocks, 8.0);  // round robin misses two times in three
  EXPECT_EQ(core_->ReportOutcome(12345, 1.0).code(), absl::StatusCode::kNotFound);
}

TEST_F(RouterCoreTest, PolicyOverrideOutsideTheExperimentIsHonoured) {
  AddNode("a", Chain(1, 8));
  AddNode("b");
  NodeLoad busy;
  busy.queued_requests = 50;
  ASSERT_TRUE(core_->Heartbeat("a", 1, busy).ok());
  RouteDecision d = Route(Chain(1, 8), "", "least_loaded");
  EXPECT_EQ(d.policy, "least_loaded");
  EXPECT_EQ(d.chosen->node_id, "b");
  ASSERT_EQ(d.peers.size(), 1u);
  EXPECT_EQ(d.peers[0].member->node_id, "a");
  EXPECT_EQ(core_->ExperimentReport().policies[0].decisions, 0u);
}

// Counts what a core tells its observer.
class CountingObserver : public RouteObserver {
 public:
  void OnDecision(const RouteDecision&) override { ++calls; }
  void OnShadow(const std::string&, uint32_t, double) override { ++calls; }
  void OnOutcome(const std::string&, double, uint32_t, uint32_t) override { ++calls; }
  int calls = 0;
};

TEST_F(RouterCoreTest, LocateReportsEveryHolderLongestFirstWithItsTiers) {
  AddNode("a");
  NodeSlot b = AddNode("b", Chain(1, 6), Tier::kDram);
  AddNode("c", Chain(1, 3), Tier::kSsd);
  AddNode("d", Chain(1, 6), Tier::kHbm);
  std::vector<IndexKey> tail = Chain(1, 8);
  tail.erase(tail.begin());
  AddNode("e", tail, Tier::kHbm);  // everything but block 0: no prefix at all
  const std::vector<IndexKey> head = Chain(1, 2);
  core_->index().Store(b, Tier::kHbm, head);  // b's first two blocks also in HBM: their best tier

  auto r = core_->Locate(Chain(1, 8));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total_blocks, 8u);
  std::vector<std::string> order;
  for (const NodeHolding& h : r->nodes) order.push_back(h.member->node_id);
  EXPECT_EQ(order, (std::vector<std::string>{"b", "d", "c"}));  // ties by node id
  ASSERT_EQ(r->nodes.size(), 3u);
  const NodeMatch& mb = r->nodes[0].match;
  EXPECT_EQ(r->nodes[0].member->endpoint, "b:7070");
  EXPECT_EQ(mb.matched, 6u);
  EXPECT_EQ(mb.per_tier[static_cast<int>(Tier::kHbm)], 2u);
  EXPECT_EQ(mb.per_tier[static_cast<int>(Tier::kDram)], 4u);
  EXPECT_EQ(mb.per_tier[static_cast<int>(Tier::kSsd)], 0u);
  EXPECT_EQ(r->nodes[1].match.per_tier[static_cast<int>(Tier::kHbm)], 6u);
  EXPECT_EQ(r->nodes[2].match.matched, 3u);
  EXPECT_EQ(r->nodes[2].match.per_tier[static_cast<int>(Tier::kSsd)], 3u);

  auto none = core_->Locate(Chain(9, 4));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->total_blocks, 4u);
  EXPECT_TRUE(none->nodes.empty());
}

TEST_F(RouterCoreTest, LocateRejectsRouteMalformedChainsButNeedsNoLiveNode) {
  EXPECT_EQ(core_->Locate({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core_->Locate(Chain(1, core_->options().max_request_blocks + 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto empty = core_->Locate(Chain(1, 2));  // Route would say Unavailable
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->nodes.empty());
}

TEST_F(RouterCoreTest, LocateListsDrainingNodes) {
  AddNode("a", Chain(1, 4));
  NodeLoad draining;
  draining.draining = true;
  ASSERT_TRUE(core_->Heartbeat("a", 1, draining).ok());
  auto r = core_->Locate(Chain(1, 4));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->nodes.size(), 1u);
  EXPECT_EQ(r->nodes[0].member->node_id, "a");
}

TEST_F(RouterCoreTest, LocateHasNoSideEffectsOnLaterRoutes) {
  // Two identical routers; only the first is asked to Locate. Round robin would move on, pending
  // load would steer least_loaded, and the figures and decision ids would show any bookkeeping.
  Make("round_robin=1,least_loaded=1");
  auto twin = RouterCore::Create(core_->options(), CostModel::Default(), &clock_);
  ASSERT_TRUE(twin.ok()) << twin.status();
  for (RouterCore* core : {core_.get(), twin->get()}) {
    for (const std::string id : {"a", "b", "c"}) {
      auto r = core->RegisterNode(id, id + ":7070", 1, {});
      ASSERT_TRUE(r.ok()) << r.status();
      std::vector<IngestEvent> events;
      if (id == "a") events.push_back({IngestEvent::Kind::kStored, Tier::kDram, Chain(1, 8)});
      ASSERT_EQ(core->ingest().ApplySnapshotChunk(r->slot, 1, 0, 0, true, events).result,
                IngestReply::Result::kApplied);
    }
  }
  CountingObserver observer;
  core_->set_observer(&observer);
  auto slot_a = core_->membership().SlotOf("a", 1);
  ASSERT_TRUE(slot_a.ok());
  const Member* a = core_->membership().View()->Find(*slot_a);
  for (int i = 0; i < 10; ++i) {
    auto r = core_->Locate(Chain(1, 8));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->nodes.size(), 1u);
  }
  EXPECT_EQ(observer.calls, 0);
  const NodeLoad load = core_->membership().EffectiveLoad(*a);
  EXPECT_EQ(load.queued_requests, 0u);
  EXPECT_EQ(load.prefill_tokens_in_flight, 0u);
  ExperimentReportData report = core_->ExperimentReport();
  EXPECT_EQ(report.requests, 0u);
  for (const PolicyReport& p : report.policies) {
    EXPECT_EQ(p.decisions, 0u);
    EXPECT_EQ(p.shadow_requests, 0u);
  }

  for (int i = 0; i < 6; ++i) {
    RouteQuery q;
    q.keys = Chain(1, 8);
    q.split_key = "s" + std::to_string(i);
    auto d1 = core_->Route(q);
    auto d2 = (*twin)->Route(q);
    ASSERT_TRUE(d1.ok() && d2.ok());
    EXPECT_EQ(d1->chosen->node_id, d2->chosen->node_id) << i;
    EXPECT_EQ(d1->policy, d2->policy) << i;
    EXPECT_EQ(d1->decision_id, d2->decision_id) << i;
  }
  EXPECT_EQ(core_->ExperimentReport().requests, 6u);
}

TEST_F(RouterCoreTest, SetExperimentValidatesAndRestartsTheFigures) {
  EXPECT_EQ(core_->SetExperiment("locality=0").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(core_->SetExperiment("round_robin=1,least_loaded=3").ok());
  ExperimentReportData r = core_->ExperimentReport();
  ASSERT_EQ(r.policies.size(), 2u);
  EXPECT_EQ(r.policies[1].policy, "least_loaded");
  EXPECT_EQ(r.policies[1].weight, 3u);
}

}  // namespace
}  // namespace strata::router
