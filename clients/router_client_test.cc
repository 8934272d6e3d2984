#include "clients/router_client.h"

#include "clients/fake_router.h"
#include "gtest/gtest.h"

namespace strata::clients {
namespace {

namespace v1 = ::strata::v1;

common::ChainHash HashOf(uint8_t seed) {
  common::ChainHash h;
  for (size_t i = 0; i < h.bytes.size(); ++i) h.bytes[i] = static_cast<uint8_t>(seed * 31 + i);
  return h;
}

v1::NodeInfo NodeInfoOf(const std::string& id) {
  v1::NodeInfo node;
  node.set_node_id(id);
  node.set_endpoint(id + ":7070");
  return node;
}

// Past 2^53, so a lossy conversion anywhere on the path would show.
constexpr uint64_t kDecisionId = (1ull << 60) + 7;

v1::RouteResponse FullRouteResponse() {
  v1::RouteResponse r;
  r.set_node_id("node-a");
  r.set_endpoint("10.0.0.1:7070");
  r.mutable_matched()->set_hbm(1);
  r.mutable_matched()->set_dram(2);
  r.mutable_matched()->set_ssd(3);
  r.set_matched_blocks(6);
  r.set_total_blocks(8);
  r.set_predicted_ttft_ms(12.25);
  r.set_policy("locality");
  r.set_decision_id(kDecisionId);
  v1::PeerSource* peer = r.add_peers();
  peer->set_node_id("node-b");
  peer->set_endpoint("10.0.0.2:7070");
  peer->set_from_block(6);
  peer->set_blocks(2);
  peer->set_tier(v1::TIER_SSD);
  v1::ShadowChoice* shadow = r.add_shadow();
  shadow->set_policy("round_robin");
  shadow->set_node_id("node-c");
  shadow->set_matched_blocks(0);
  shadow->set_predicted_ttft_ms(40.5);
  return r;
}

class RouterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<RouterClient>> client = RouterClient::Connect(router_.address());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(client).value();
    router_.SetNodes({NodeInfoOf("node-a")});
    router_.SetRouteResponse(FullRouteResponse());
  }

  static RouteQuery HashQuery() {
    RouteQuery query;
    query.namespace_name = "llama/b16";
    query.chain_hashes = {HashOf(1), HashOf(2)};
    return query;
  }

  FakeRouter router_;
  std::unique_ptr<RouterClient> client_;
};

TEST(RouterClientOptionsTest, ValidateNamesTheBadField) {
  RouterClientOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.deadline = absl::ZeroDuration();
  EXPECT_NE(options.Validate().message().find("deadline"), std::string_view::npos);
  options = RouterClientOptions{};
  options.max_attempts = 0;
  EXPECT_NE(options.Validate().message().find("max_attempts"), std::string_view::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(RouterClient::Connect("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(RouterClient::Connect("127.0.0.1:1", options).status()));
}

TEST_F(RouterClientTest, RouteSendsRaw32ByteHashesAndEveryQueryField) {
  RouteQuery query = HashQuery();
  query.block_tokens = 16;
  query.prompt_tokens = 40;
  query.session_key = "session-1";
  query.request_id = "req-9";
  query.policy = "round_robin";
  ASSERT_TRUE(client_->Route(query).ok());
  const v1::RouteRequest sent = router_.last_route();
  EXPECT_EQ(sent.namespace_(), "llama/b16");
  ASSERT_EQ(sent.chain_hashes_size(), 2);
  EXPECT_EQ(sent.chain_hashes(0).size(), 32u);
  EXPECT_EQ(sent.chain_hashes(0), HashOf(1).view());  // raw bytes, not hex
  EXPECT_EQ(sent.chain_hashes(1), HashOf(2).view());
  EXPECT_EQ(sent.token_ids_size(), 0);
  EXPECT_EQ(sent.block_tokens(), 16u);
  EXPECT_EQ(sent.prompt_tokens(), 40u);
  EXPECT_EQ(sent.session_key(), "session-1");
  EXPECT_EQ(sent.request_id(), "req-9");
  EXPECT_EQ(sent.policy(), "round_robin");
  EXPECT_EQ(sent.cache_salt(), "");
}

TEST_F(RouterClientTest, RouteInTokenModeSendsTokensBlockSizeAndSalt) {
  RouteQuery query;
  query.namespace_name = "default";
  query.token_ids = {5, 6, 7, 4000000000u};
  query.block_tokens = 2;
  query.cache_salt = "tenant-7";
  ASSERT_TRUE(client_->Route(query).ok());
  const v1::RouteRequest sent = router_.last_route();
  EXPECT_EQ(sent.chain_hashes_size(), 0);
  ASSERT_EQ(sent.token_ids_size(), 4);
  EXPECT_EQ(sent.token_ids(0), 5u);
  EXPECT_EQ(sent.token_ids(3), 4000000000u);
  EXPECT_EQ(sent.block_tokens(), 2u);
  EXPECT_EQ(sent.cache_salt(), "tenant-7");
}

TEST_F(RouterClientTest, RouteResultCarriesEveryResponseField) {
  absl::StatusOr<RouteResult> r = client_->Route(HashQuery());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->node_id, "node-a");
  EXPECT_EQ(r->endpoint, "10.0.0.1:7070");
  EXPECT_EQ(r->matched.hbm, 1u);
  EXPECT_EQ(r->matched.dram, 2u);
  EXPECT_EQ(r->matched.ssd, 3u);
  EXPECT_EQ(r->matched_blocks, 6u);
  EXPECT_EQ(r->total_blocks, 8u);
  EXPECT_EQ(r->predicted_ttft_ms, 12.25);
  EXPECT_EQ(r->policy, "locality");
  EXPECT_EQ(r->decision_id, kDecisionId);
  ASSERT_EQ(r->peers.size(), 1u);
  EXPECT_EQ(r->peers[0].node_id, "node-b");
  EXPECT_EQ(r->peers[0].endpoint, "10.0.0.2:7070");
  EXPECT_EQ(r->peers[0].from_block, 6u);
  EXPECT_EQ(r->peers[0].blocks, 2u);
  EXPECT_EQ(r->peers[0].tier, v1::TIER_SSD);
  ASSERT_EQ(r->shadow.size(), 1u);
  EXPECT_EQ(r->shadow[0].policy, "round_robin");
  EXPECT_EQ(r->shadow[0].node_id, "node-c");
  EXPECT_EQ(r->shadow[0].predicted_ttft_ms, 40.5);
}

TEST_F(RouterClientTest, MalformedQueriesFailBeforeAnyRpc) {
  RouteQuery neither;
  neither.namespace_name = "default";
  EXPECT_TRUE(absl::IsInvalidArgument(client_->Route(neither).status()));
  RouteQuery both = HashQuery();
  both.token_ids = {1, 2};
  const absl::Status both_status = client_->Route(both).status();
  EXPECT_TRUE(absl::IsInvalidArgument(both_status));
  EXPECT_NE(both_status.message().find("not both"), std::string_view::npos) << both_status;
  RouteQuery bad_namespace = HashQuery();
  bad_namespace.namespace_name = "bad name";
  EXPECT_TRUE(absl::IsInvalidArgument(client_->Route(bad_namespace).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(client_->SetExperiment("").status()));
  EXPECT_EQ(router_.calls(), 0);
}

TEST_F(RouterClientTest, RouterCodesArriveAsAbslCodesWithoutRetries) {
  RouteQuery query = HashQuery();
  query.policy = "bogus";  // the fake's unknown policy
  const absl::Status unknown_policy = client_->Route(query).status();
  EXPECT_TRUE(absl::IsInvalidArgument(unknown_policy)) << unknown_policy;
  EXPECT_EQ(unknown_policy.message(), "unknown policy 'bogus'");
  EXPECT_EQ(router_.calls(), 1);

  const absl::Status unknown_decision = client_->ReportOutcome(
      {.decision_id = 99, .ttft_ms = 1, .prompt_tokens = 0, .cached_tokens = 0});
  EXPECT_TRUE(absl::IsNotFound(unknown_decision)) << unknown_decision;
  EXPECT_EQ(router_.calls(), 2);

  router_.FailNextCalls(1, grpc::Status(grpc::FAILED_PRECONDITION, "not yet"));
  EXPECT_TRUE(absl::IsFailedPrecondition(client_->ListNodes().status()));
  EXPECT_EQ(router_.calls(), 3);
}

TEST_F(RouterClientTest, NoLiveNodeIsRetriedThenSurfacedAsUnavailable) {
  router_.SetNodes({});
  const absl::Status status = client_->Route(HashQuery()).status();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_EQ(status.message(), "no live node");
  EXPECT_EQ(router_.calls(), RouterClientOptions{}.max_attempts);
}

TEST_F(RouterClientTest, UnavailableIsRetriedUntilItSucceeds) {
  router_.FailNextCalls(2, grpc::Status(grpc::UNAVAILABLE, "restarting"));
  absl::StatusOr<RouteResult> r = client_->Route(HashQuery());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->node_id, "node-a");
  EXPECT_EQ(router_.calls(), 3);
}

TEST_F(RouterClientTest, UnreachableRouterIsUnavailable) {
  // Port 1 on loopback has no listener: connection refused, retried, then reported.
  absl::StatusOr<std::unique_ptr<RouterClient>> client = RouterClient::Connect("127.0.0.1:1");
  ASSERT_TRUE(client.ok());
  const absl::Status status = (*client)->ListNodes().status();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
}

TEST_F(RouterClientTest, ReportOutcomeSendsTheMeasurement) {
  const absl::Status status = client_->ReportOutcome(
      {.decision_id = kDecisionId, .ttft_ms = 33.5, .prompt_tokens = 512, .cached_tokens = 384});
  ASSERT_TRUE(status.ok()) << status;
  const v1::ReportOutcomeRequest sent = router_.last_outcome();
  EXPECT_EQ(sent.decision_id(), kDecisionId);
  EXPECT_EQ(sent.ttft_ms(), 33.5);
  EXPECT_EQ(sent.prompt_tokens(), 512u);
  EXPECT_EQ(sent.cached_tokens(), 384u);
}

TEST_F(RouterClientTest, ListNodesMapsLoadAndState) {
  v1::NodeInfo busy = NodeInfoOf("node-b");
  busy.set_epoch(1700000000123456789ull);
  busy.mutable_load()->set_queued_requests(3);
  busy.mutable_load()->set_running_requests(4);
  busy.mutable_load()->set_prefill_tokens_in_flight(5000);
  busy.mutable_load()->set_free_hbm_blocks(60);
  busy.mutable_load()->set_draining(true);
  busy.set_last_heartbeat_age_ms(250);
  busy.set_indexed_blocks(777);
  busy.set_source("vllm");
  busy.set_synced(false);
  router_.SetNodes({NodeInfoOf("node-a"), busy});
  absl::StatusOr<std::vector<NodeStatus>> nodes = client_->ListNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].node_id, "node-a");
  const NodeStatus& b = (*nodes)[1];
  EXPECT_EQ(b.endpoint, "node-b:7070");
  EXPECT_EQ(b.epoch, 1700000000123456789ull);
  EXPECT_EQ(b.load.queued_requests, 3u);
  EXPECT_EQ(b.load.running_requests, 4u);
  EXPECT_EQ(b.load.prefill_tokens_in_flight, 5000u);
  EXPECT_EQ(b.load.free_hbm_blocks, 60u);
  EXPECT_TRUE(b.load.draining);
  EXPECT_EQ(b.heartbeat_age_ms, 250u);
  EXPECT_EQ(b.indexed_blocks, 777u);
  EXPECT_EQ(b.source, "vllm");
  EXPECT_FALSE(b.synced);
}

TEST_F(RouterClientTest, SetExperimentSendsTheSpecAndBothCallsReturnTheReport) {
  v1::ExperimentReport report;
  report.set_requests(10);
  v1::PolicyFigures* p = report.add_policies();
  p->set_policy("locality");
  p->set_weight(50);
  p->set_decisions(6);
  p->mutable_matched()->set_dram(9);
  p->set_requested_blocks(20);
  p->set_p99_reported_ttft_ms(80.5);
  p->set_shadow_agreements(4);
  router_.SetExperimentReport(report);

  absl::StatusOr<ExperimentReport> set = client_->SetExperiment("locality=50,round_robin=50");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(router_.last_spec(), "locality=50,round_robin=50");
  EXPECT_EQ(set->spec, "locality=50,round_robin=50");
  absl::StatusOr<ExperimentReport> got = client_->GetExperimentReport();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->requests, 10u);
  ASSERT_EQ(got->policies.size(), 1u);
  const PolicyFigures& f = got->policies[0];
  EXPECT_EQ(f.policy, "locality");
  EXPECT_EQ(f.weight, 50u);
  EXPECT_EQ(f.decisions, 6u);
  EXPECT_EQ(f.matched.dram, 9u);
  EXPECT_EQ(f.requested_blocks, 20u);
  EXPECT_EQ(f.p99_reported_ttft_ms, 80.5);
  EXPECT_EQ(f.shadow_agreements, 4u);
}

TEST_F(RouterClientTest, LocateSendsTheChainAndMapsEveryHolder) {
  v1::LocateResponse response;
  response.set_total_blocks(4);
  v1::NodeHolding* b = response.add_nodes();
  b->set_node_id("node-b");
  b->set_endpoint("10.0.0.2:7070");
  b->set_matched_blocks(4);
  b->mutable_tiers()->set_hbm(1);
  b->mutable_tiers()->set_dram(3);
  v1::NodeHolding* a = response.add_nodes();
  a->set_node_id("node-a");
  a->set_matched_blocks(2);
  a->mutable_tiers()->set_ssd(2);
  router_.SetLocateResponse(response);

  ChainQuery chain;
  chain.namespace_name = "default";
  chain.token_ids = {5, 6, 7, 8};
  chain.block_tokens = 2;
  chain.cache_salt = "tenant-7";
  absl::StatusOr<LocateResult> r = client_->Locate(chain);
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::LocateRequest sent = router_.last_locate();
  EXPECT_EQ(sent.namespace_(), "default");
  EXPECT_EQ(sent.token_ids_size(), 4);
  EXPECT_EQ(sent.block_tokens(), 2u);
  EXPECT_EQ(sent.cache_salt(), "tenant-7");
  EXPECT_EQ(r->total_blocks, 4u);
  ASSERT_EQ(r->nodes.size(), 2u);
  EXPECT_EQ(r->nodes[0].node_id, "node-b");
  EXPECT_EQ(r->nodes[0].endpoint, "10.0.0.2:7070");
  EXPECT_EQ(r->nodes[0].matched_blocks, 4u);
  EXPECT_EQ(r->nodes[0].tiers.hbm, 1u);
  EXPECT_EQ(r->nodes[0].tiers.dram, 3u);
  EXPECT_EQ(r->nodes[1].tiers.ssd, 2u);

  absl::StatusOr<LocateResult> by_hashes = client_->Locate(HashQuery());  // a RouteQuery is a chain
  ASSERT_TRUE(by_hashes.ok()) << by_hashes.status();
  EXPECT_EQ(router_.last_locate().chain_hashes(1), HashOf(2).view());
}

TEST_F(RouterClientTest, MalformedLocateQueriesFailBeforeAnyRpc) {
  ChainQuery neither;
  neither.namespace_name = "default";
  EXPECT_TRUE(absl::IsInvalidArgument(client_->Locate(neither).status()));
  ChainQuery both = HashQuery();
  both.token_ids = {1};
  const absl::Status both_status = client_->Locate(both).status();
  EXPECT_TRUE(absl::IsInvalidArgument(both_status));
  EXPECT_EQ(both_status.message(), "a locate query takes chain hashes or token ids, not both");
  ChainQuery bad_namespace = HashQuery();
  bad_namespace.namespace_name = "bad name";
  EXPECT_TRUE(absl::IsInvalidArgument(client_->Locate(bad_namespace).status()));
  EXPECT_EQ(router_.calls(), 0);
}

}  // namespace
}  // namespace strata::clients
