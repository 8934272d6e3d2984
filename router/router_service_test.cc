#include "router/router_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "common/block_hash.h"
#include "common/grpc_server.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"

namespace strata::router {
namespace {

namespace v1 = ::strata::v1;

std::vector<uint32_t> Tokens(size_t n, uint32_t seed) {
  std::vector<uint32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = seed * 1000 + static_cast<uint32_t>(i);
  return t;
}

// A real router service on a loopback port, driven through the generated stub.
class RouterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RouterOptions o;
    auto core = RouterCore::Create(o, CostModel::Default(), &clock_);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = std::move(*core);
    service_ = std::make_unique<RouterService>(core_.get());
    auto server = common::StartGrpcServer("127.0.0.1:0", {service_.get()}, kRouterMaxMessageBytes);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Router::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(server_.port),
                                                    grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_.server->Shutdown(); }

  void Register(const std::string& id, uint64_t epoch) {
    v1::RegisterNodeRequest req;
    req.set_node_id(id);
    req.set_endpoint(id + ":7070");
    req.set_epoch(epoch);
    v1::RegisterNodeResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->RegisterNode(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.snapshot_required());
    EXPECT_EQ(resp.ttl_ms(), 3000u);
    EXPECT_EQ(resp.heartbeat_interval_ms(), 1000u);
  }

  static v1::BlockEvent Stored(const std::vector<common::ChainHash>& chain, v1::Tier tier) {
    v1::BlockEvent e;
    e.set_kind(v1::BlockEvent::STORED);
    e.set_tier(tier);
    e.set_namespace_id(common::NamespaceIdOf("default"));
    std::string hashes;
    for (const auto& h : chain) hashes.append(h.view());
    e.set_chain_hashes(hashes);
    return e;
  }

  common::ManualClock clock_{absl::FromUnixSeconds(1'700'000'000)};
  std::unique_ptr<RouterCore> core_;
  std::unique_ptr<RouterService> service_;
  common::GrpcServer server_;
  std::unique_ptr<v1::Router::Stub> stub_;
};

TEST_F(RouterServiceTest, TokenAndHashRequestsNameTheSameBlocks) {
  const auto tokens = Tokens(40, 1);
  v1::RouteRequest by_tokens;
  by_tokens.set_namespace_("default");
  for (uint32_t t : tokens) by_tokens.add_token_ids(t);
  by_tokens.set_block_tokens(16);
  auto q1 = service_->QueryFromRequest(by_tokens);
  ASSERT_TRUE(q1.ok()) << q1.status();
  EXPECT_EQ(q1->keys.size(), 2u);  // the trailing partial block is not a block
  EXPECT_EQ(q1->prompt_tokens, 40u);

  v1::RouteRequest by_hashes;
  by_hashes.set_namespace_("default");
  for (const auto& h : common::HashChain(common::NamespaceIdOf("default"), "", tokens, 16)) {
    by_hashes.add_chain_hashes(std::string(h.view()));
  }
  auto q2 = service_->QueryFromRequest(by_hashes);
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(q1->keys, q2->keys);
  // A different tenant salt names different blocks.
  by_tokens.set_cache_salt("tenant-b");
  auto q3 = service_->QueryFromRequest(by_tokens);
  ASSERT_TRUE(q3.ok());
  EXPECT_NE(q3->keys, q1->keys);
}

TEST_F(RouterServiceTest, MalformedRouteRequestsAreInvalidArgument) {
  auto code = [&](const v1::RouteRequest& req) {
    v1::RouteResponse resp;
    grpc::ClientContext ctx;
    return stub_->Route(&ctx, req, &resp).error_code();
  };
  v1::RouteRequest none;
  none.set_namespace_("default");
  EXPECT_EQ(code(none), grpc::StatusCode::INVALID_ARGUMENT);
  v1::RouteRequest both = none;
  both.add_token_ids(1);
  both.add_chain_hashes(std::string(32, 'x'));
  EXPECT_EQ(code(both), grpc::StatusCode::INVALID_ARGUMENT);
  v1::RouteRequest short_hash = none;
  short_hash.add_chain_hashes("abc");
  EXPECT_EQ(code(short_hash), grpc::StatusCode::INVALID_ARGUMENT);
  v1::RouteRequest no_namespace;
  no_namespace.add_chain_hashes(std::string(32, 'x'));
  EXPECT_EQ(code(no_namespace), grpc::StatusCode::INVALID_ARGUMENT);
  v1::RouteRequest partial = none;
  partial.add_token_ids(1);
  partial.set_block_tokens(16);
  EXPECT_EQ(code(partial), grpc::StatusCode::INVALID_ARGUMENT);  // less than one block
  // Well formed, but nobody to route to.
  v1::RouteRequest fine = none;
  fine.add_chain_hashes(std::string(32, 'x'));
  EXPECT_EQ(code(fine), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(RouterServiceTest, SnapshotThenBatchesOverTheStreamMakeRoutesFindTheData) {
  Register("a", 5);
  Register("b", 5);
  const auto chain = common::HashChain(common::NamespaceIdOf("default"), "", Tokens(64, 2), 16);
  grpc::ClientContext ctx;
  auto stream = stub_->PublishEvents(&ctx);
  v1::PublishRequest snap;
  snap.mutable_snapshot()->set_node_id("b");
  snap.mutable_snapshot()->set_epoch(5);
  snap.mutable_snapshot()->set_sequence(0);
  snap.mutable_snapshot()->set_last(true);
  *snap.mutable_snapshot()->add_blocks() = Stored({chain[0], chain[1]}, v1::TIER_DRAM);
  ASSERT_TRUE(stream->Write(snap));
  v1::PublishReply reply;
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.result(), v1::PublishReply::APPLIED) << reply.message();

  v1::PublishRequest batch;
  batch.mutable_batch()->set_node_id("b");
  batch.mutable_batch()->set_epoch(5);
  batch.mutable_batch()->set_sequence(1);
  *batch.mutable_batch()->add_events() = Stored({chain[2], chain[3]}, v1::TIER_HBM);
  ASSERT_TRUE(stream->Write(batch));
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.result(), v1::PublishReply::APPLIED) << reply.message();
  EXPECT_EQ(reply.sequence(), 1u);

  // A gap asks for a snapshot.
  batch.mutable_batch()->set_sequence(5);
  ASSERT_TRUE(stream->Write(batch));
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.result(), v1::PublishReply::SNAPSHOT_REQUIRED);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  v1::RouteRequest req;
  req.set_namespace_("default");
  for (const auto& h : chain) req.add_chain_hashes(std::string(h.view()));
  v1::RouteResponse resp;
  grpc::ClientContext rctx;
  ASSERT_TRUE(stub_->Route(&rctx, req, &resp).ok());
  EXPECT_EQ(resp.node_id(), "b");
  EXPECT_EQ(resp.endpoint(), "b:7070");
  EXPECT_EQ(resp.matched_blocks(), 4u);
  EXPECT_EQ(resp.matched().dram(), 2u);
  EXPECT_EQ(resp.matched().hbm(), 2u);
  EXPECT_EQ(resp.total_blocks(), 4u);
  EXPECT_EQ(resp.policy(), "locality");
  EXPECT_GT(resp.predicted_ttft_ms(), 0);

  v1::ListNodesResponse nodes;
  grpc::ClientContext lctx;
  ASSERT_TRUE(stub_->ListNodes(&lctx, v1::ListNodesRequest(), &nodes).ok());
  ASSERT_EQ(nodes.nodes_size(), 2);
  EXPECT_EQ(nodes.nodes(1).node_id(), "b");
  EXPECT_EQ(nodes.nodes(1).indexed_blocks(), 4u);
  EXPECT_FALSE(nodes.nodes(1).synced());  // the gap: it owes a snapshot
  EXPECT_FALSE(nodes.nodes(0).synced());  // never sent one
}

TEST_F(RouterServiceTest, LocateListsHoldersByTokensOrHashesWithoutRouting) {
  Register("a", 5);
  Register("b", 5);
  Register("c", 5);
  const common::NamespaceId ns = common::NamespaceIdOf("default");
  const auto tokens = Tokens(64, 3);
  const auto chain = common::HashChain(ns, "", tokens, 16);
  ASSERT_EQ(chain.size(), 4u);
  auto keys = [&](size_t n) {
    std::vector<IndexKey> k;
    for (size_t i = 0; i < n; ++i) k.push_back(IndexKeyOf(ns, chain[i]));
    return k;
  };
  auto install = [&](const std::string& id, std::vector<IngestEvent> events) {
    auto slot = core_->membership().SlotOf(id, 5);
    ASSERT_TRUE(slot.ok());
    EXPECT_EQ(core_->ingest().ApplySnapshotChunk(*slot, 5, 0, 0, true, events).result,
              IngestReply::Result::kApplied);
  };
  install("a", {{IngestEvent::Kind::kStored, Tier::kSsd, keys(2)}});
  install("b", {{IngestEvent::Kind::kStored, Tier::kDram, keys(4)},
                {IngestEvent::Kind::kStored, Tier::kHbm, keys(1)}});

  v1::LocateRequest by_tokens;
  by_tokens.set_namespace_("default");
  for (uint32_t t : tokens) by_tokens.add_token_ids(t);
  by_tokens.set_block_tokens(16);
  v1::LocateRequest by_hashes;
  by_hashes.set_namespace_("default");
  for (const auto& h : chain) by_hashes.add_chain_hashes(std::string(h.view()));
  for (const v1::LocateRequest& req : {by_tokens, by_hashes}) {
    v1::LocateResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Locate(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.total_blocks(), 4u);
    ASSERT_EQ(resp.nodes_size(), 2);  // c holds nothing
    EXPECT_EQ(resp.nodes(0).node_id(), "b");
    EXPECT_EQ(resp.nodes(0).endpoint(), "b:7070");
    EXPECT_EQ(resp.nodes(0).matched_blocks(), 4u);
    EXPECT_EQ(resp.nodes(0).tiers().hbm(), 1u);
    EXPECT_EQ(resp.nodes(0).tiers().dram(), 3u);
    EXPECT_EQ(resp.nodes(1).node_id(), "a");
    EXPECT_EQ(resp.nodes(1).matched_blocks(), 2u);
    EXPECT_EQ(resp.nodes(1).tiers().ssd(), 2u);
  }
  // Nothing was routed.
  v1::ExperimentReport report;
  grpc::ClientContext rctx;
  ASSERT_TRUE(stub_->GetExperimentReport(&rctx, v1::GetExperimentReportRequest(), &report).ok());
  EXPECT_EQ(report.requests(), 0u);
}

TEST_F(RouterServiceTest, MalformedLocateRequestsAreInvalidArgumentAndNoNodeIsAnEmptyAnswer) {
  auto call = [&](const v1::LocateRequest& req, v1::LocateResponse* resp) {
    grpc::ClientContext ctx;
    return stub_->Locate(&ctx, req, resp).error_code();
  };
  v1::LocateResponse resp;
  v1::LocateRequest none;
  none.set_namespace_("default");
  EXPECT_EQ(call(none, &resp), grpc::StatusCode::INVALID_ARGUMENT);
  v1::LocateRequest both = none;
  both.add_token_ids(1);
  both.add_chain_hashes(std::string(32, 'x'));
  EXPECT_EQ(call(both, &resp), grpc::StatusCode::INVALID_ARGUMENT);
  v1::LocateRequest short_hash = none;
  short_hash.add_chain_hashes("abc");
  EXPECT_EQ(call(short_hash, &resp), grpc::StatusCode::INVALID_ARGUMENT);
  v1::LocateRequest no_namespace;
  no_namespace.add_chain_hashes(std::string(32, 'x'));
  EXPECT_EQ(call(no_namespace, &resp), grpc::StatusCode::INVALID_ARGUMENT);
  v1::LocateRequest partial = none;
  partial.add_token_ids(1);
  partial.set_block_tokens(16);
  EXPECT_EQ(call(partial, &resp), grpc::StatusCode::INVALID_ARGUMENT);
  v1::LocateRequest fine = none;
  fine.add_chain_hashes(std::string(32, 'x'));
  EXPECT_EQ(call(fine, &resp), grpc::StatusCode::OK);  // Route would say UNAVAILABLE
  EXPECT_EQ(resp.total_blocks(), 1u);
  EXPECT_EQ(resp.nodes_size(), 0);
}

TEST_F(RouterServiceTest, AStreamForAnUnregisteredNodeFailsAndMalformedEventsAreRejected) {
  {
    grpc::ClientContext ctx;
    auto stream = stub_->PublishEvents(&ctx);
    v1::PublishRequest msg;
    msg.mutable_batch()->set_node_id("ghost");
    msg.mutable_batch()->set_epoch(1);
    stream->Write(msg);
    stream->WritesDone();
    v1::PublishReply reply;
    while (stream->Read(&reply)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  Register("a", 1);
  grpc::ClientContext ctx;
  auto stream = stub_->PublishEvents(&ctx);
  v1::PublishRequest msg;
  msg.mutable_snapshot()->set_node_id("a");
  msg.mutable_snapshot()->set_epoch(1);
  msg.mutable_snapshot()->set_last(true);
  v1::BlockEvent* bad = msg.mutable_snapshot()->add_blocks();
  bad->set_kind(v1::BlockEvent::STORED);
  bad->set_tier(v1::TIER_DRAM);
  bad->set_chain_hashes(std::string(33, 'x'));
  stream->Write(msg);
  v1::PublishReply reply;
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.result(), v1::PublishReply::REJECTED);
  // The same stream cannot speak for another node.
  v1::PublishRequest other;
  other.mutable_batch()->set_node_id("b");
  other.mutable_batch()->set_epoch(1);
  stream->Write(other);
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.result(), v1::PublishReply::REJECTED);
  EXPECT_NE(reply.message().find("belongs to node a"), std::string::npos) << reply.message();
  // A stale epoch is rejected too.
  v1::PublishRequest stale;
  stale.mutable_batch()->set_node_id("a");
  stale.mutable_batch()->set_epoch(0);
  stream->Write(stale);
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.result(), v1::PublishReply::REJECTED);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(RouterServiceTest, HeartbeatForUnknownNodeIsNotFoundAndExperimentsRoundTrip) {
  v1::HeartbeatRequest hb;
  hb.set_node_id("nobody");
  hb.set_epoch(1);
  v1::HeartbeatResponse hb_resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(stub_->Heartbeat(&ctx, hb, &hb_resp).error_code(), grpc::StatusCode::NOT_FOUND);

  v1::SetExperimentRequest set;
  set.set_spec("locality=70,random=30");
  v1::ExperimentReport report;
  grpc::ClientContext sctx;
  ASSERT_TRUE(stub_->SetExperiment(&sctx, set, &report).ok());
  ASSERT_EQ(report.policies_size(), 2);
  EXPECT_EQ(report.policies(1).policy(), "random");
  EXPECT_EQ(report.policies(1).weight(), 30u);
  set.set_spec("bogus=1");
  grpc::ClientContext bctx;
  EXPECT_EQ(stub_->SetExperiment(&bctx, set, &report).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::ReportOutcomeRequest outcome;
  outcome.set_decision_id(42);
  outcome.set_ttft_ms(3);
  v1::ReportOutcomeResponse outcome_resp;
  grpc::ClientContext octx;
  EXPECT_EQ(stub_->ReportOutcome(&octx, outcome, &outcome_resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// ---- ValidateRouteRequest (the handlers' pure validation) ------------------------------------

TEST(ValidateRouteRequestTest, TokensMakingMoreBlocksThanTheLimitAreRejectedBeforeHashing) {
  RouteRequestLimits limits;
  limits.max_blocks = 4;
  limits.max_tokens = 1 << 20;
  v1::RouteRequest req;
  req.set_namespace_("default");
  req.set_block_tokens(1);
  for (uint32_t t : Tokens(5, 1)) req.add_token_ids(t);  // 5 one-token blocks: over the limit
  const auto over = ValidateRouteRequest(req, limits);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(over.status().message().find("5 blocks"), std::string_view::npos)
      << over.status().message();
  req.mutable_token_ids()->RemoveLast();  // exactly the limit
  const auto at = ValidateRouteRequest(req, limits);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->size(), 4u);
}

TEST(ValidateRouteRequestTest, TokenKeysAreTheHashChainOfTheTokensWithTheDefaultBlockSize) {
  RouteRequestLimits limits;
  limits.default_block_tokens = 4;
  v1::LocateRequest req;
  req.set_namespace_("default");
  req.set_cache_salt("tenant");
  const std::vector<uint32_t> tokens = Tokens(10, 2);  // two full blocks and a partial one
  for (uint32_t t : tokens) req.add_token_ids(t);
  const auto keys = ValidateLocateRequest(req, limits);
  ASSERT_TRUE(keys.ok()) << keys.status();
  const common::NamespaceId ns = common::NamespaceIdOf("default");
  const auto chain = common::HashChain(ns, "tenant", tokens, 4);
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0], IndexKeyOf(ns, chain[0]));
  EXPECT_EQ((*keys)[1], IndexKeyOf(ns, chain[1]));
}

TEST(ValidateRouteRequestTest, TooManyTokensOrHashesAreInvalidArgument) {
  RouteRequestLimits limits;
  limits.max_blocks = 2;
  limits.max_tokens = 8;
  v1::RouteRequest tokens;
  tokens.set_namespace_("default");
  for (uint32_t t : Tokens(9, 3)) tokens.add_token_ids(t);
  EXPECT_EQ(ValidateRouteRequest(tokens, limits).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::RouteRequest hashes;
  hashes.set_namespace_("default");
  for (int i = 0; i < 3; ++i) hashes.add_chain_hashes(std::string(32, static_cast<char>('a' + i)));
  EXPECT_EQ(ValidateRouteRequest(hashes, limits).status().code(),
            absl::StatusCode::kInvalidArgument);
  hashes.mutable_chain_hashes()->RemoveLast();
  EXPECT_TRUE(ValidateRouteRequest(hashes, limits).ok());
}

}  // namespace
}  // namespace strata::router
