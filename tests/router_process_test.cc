// Process-level tests of strata-router: a real router and three real strata-cachenode processes on
// loopback, the strata CLI, and a vLLM-style KV event publisher (python3-zmq + python3-msgpack).
//
// Waiting is by polling the router with a deadline (what an operator would do), never by sleeping
// a fixed time and hoping.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clients/cache_node_client.h"
#include "common/block_hash.h"
#include "common/checksum.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"
#include "strata/v1/router.grpc.pb.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

namespace v1 = ::strata::v1;

constexpr char kTtl[] = "1s";
constexpr absl::Duration kPatience = absl::Seconds(20);

// Polls `done` until it returns true or the deadline passes.
bool Eventually(const std::function<bool()>& done, absl::Duration patience = kPatience) {
  const absl::Time deadline = absl::Now() + patience;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

std::vector<common::ChainHash> ChainOf(uint32_t seed, size_t blocks) {
  std::vector<uint32_t> tokens(blocks * 16);
  std::mt19937 rng(seed);
  for (uint32_t& t : tokens) t = rng() % 128000;
  return common::HashChain(common::NamespaceIdOf("default"), "", tokens, 16);
}

std::string HexList(const std::vector<common::ChainHash>& chain) {
  std::vector<std::string> hex;
  for (const auto& h : chain) hex.push_back(h.Hex());
  return absl::StrJoin(hex, ",");
}

class RouterCluster : public ::testing::Test {
 protected:
  // Starts the router on a free port, or (a restart) on the port it had.
  void StartRouter(std::vector<std::string> extra = {}) {
    auto flags_for = [&](int port) {
      std::vector<std::string> flags = {"--listen", absl::StrCat("127.0.0.1:", port), "--node-ttl",
                                        kTtl};
      flags.insert(flags.end(), extra.begin(), extra.end());
      return flags;
    };
    auto addr = router_port_ == 0 ? StartOnFreePort(router_, flags_for, &router_port_)
                                  : router_.Start(flags_for(router_port_));
    ASSERT_TRUE(addr.ok()) << addr.status();
    router_addr_ = *addr;
    stub_ =
        v1::Router::NewStub(grpc::CreateChannel(router_addr_, grpc::InsecureChannelCredentials()));
  }

  void StartNodes(int n) {
    for (int i = 0; i < n; ++i) {
      dirs_.push_back(std::make_unique<TempDir>());
      nodes_.push_back(std::make_unique<NodeProcess>());
      auto addr = nodes_.back()->Start({"--data-dir", dirs_.back()->path(), "--dram-bytes", "64MiB",
                                        "--ssd-bytes", "256MiB", "--router", router_addr_,
                                        "--node-id", NodeId(i), "--heartbeat-interval", "200ms"});
      ASSERT_TRUE(addr.ok()) << addr.status();
    }
  }

  static std::string NodeId(int i) { return absl::StrCat("node-", i); }

  v1::ListNodesResponse Nodes() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListNodesResponse resp;
    stub_->ListNodes(&ctx, v1::ListNodesRequest(), &resp);
    return resp;
  }

  // A copy: iterating Nodes().nodes() directly would walk a destroyed temporary.
  std::vector<v1::NodeInfo> ListedNodes() {
    v1::ListNodesResponse r = Nodes();
    return {r.nodes().begin(), r.nodes().end()};
  }

  bool AllSynced(size_t n) {
    v1::ListNodesResponse r = Nodes();
    if (static_cast<size_t>(r.nodes_size()) != n) return false;
    for (const auto& node : r.nodes()) {
      if (!node.synced()) return false;
    }
    return true;
  }

  grpc::Status Route(const std::vector<common::ChainHash>& chain, v1::RouteResponse* resp,
                     const std::string& policy = "") {
    v1::RouteRequest req;
    req.set_namespace_("default");
    for (const auto& h : chain) req.add_chain_hashes(std::string(h.view()));
    req.set_policy(policy);
    // 512-token blocks (64 MiB of KV each): a DRAM hit saves tens of milliseconds of prefill, far
    // more than the load the router books on a node between two heartbeats.
    req.set_block_tokens(512);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub_->Route(&ctx, req, resp);
  }

  void PutChain(int node, const std::vector<common::ChainHash>& chain) {
    clients::ClientOptions options;
    options.target = nodes_[node]->address();
    auto client = clients::CacheNodeClient::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    std::vector<std::string> payloads;
    std::vector<clients::PutBlock> blocks;
    for (size_t i = 0; i < chain.size(); ++i) payloads.push_back(std::string(4096, 'a' + i % 26));
    for (size_t i = 0; i < chain.size(); ++i) {
      blocks.push_back(
          {chain[i], std::as_bytes(std::span(payloads[i])), static_cast<uint32_t>(i), false});
    }
    auto results = (*client)->Put(common::NamespaceIdOf("default"), blocks);
    ASSERT_TRUE(results.ok()) << results.status();
    for (const auto& r : *results) ASSERT_TRUE(r.status.ok()) << r.status;
  }

  // Waits until a route of `chain` lands on `node` with `blocks` matched.
  bool RoutesTo(const std::vector<common::ChainHash>& chain, const std::string& node,
                uint32_t blocks) {
    return Eventually([&] {
      v1::RouteResponse resp;
      return Route(chain, &resp).ok() && resp.node_id() == node && resp.matched_blocks() == blocks;
    });
  }

  int router_port_ = 0;
  std::string router_addr_;
  NodeProcess router_{RouterBinary()};
  std::unique_ptr<v1::Router::Stub> stub_;
  std::vector<std::unique_ptr<TempDir>> dirs_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

TEST_F(RouterCluster, RouteFollowsTheDataAndTheCliPrintsIt) {
  ASSERT_NO_FATAL_FAILURE(StartRouter());
  ASSERT_NO_FATAL_FAILURE(StartNodes(3));
  ASSERT_TRUE(Eventually([&] { return AllSynced(3); })) << router_.stderr_text();
  const auto chain = ChainOf(1, 4);
  PutChain(1, chain);
  ASSERT_TRUE(RoutesTo(chain, NodeId(1), 4)) << router_.stderr_text();

  auto cli = RunCli({"--router", router_addr_, "route", "--namespace", "default", "--hashes",
                     HexList(chain), "--block-tokens", "512", "--output", "json"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  EXPECT_EQ(cli->exit_code, 0) << cli->stderr_text;
  EXPECT_NE(cli->stdout_text.find("\"node\":\"node-1\""), std::string::npos) << cli->stdout_text;
  EXPECT_NE(cli->stdout_text.find("\"dram\":4"), std::string::npos) << cli->stdout_text;
  EXPECT_NE(cli->stdout_text.find("\"policy\":\"locality\""), std::string::npos);
  EXPECT_NE(cli->stdout_text.find("\"decision_id\""), std::string::npos);

  auto nodes = RunCli({"--router", router_addr_, "nodes", "--output", "json"});
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(nodes->exit_code, 0) << nodes->stderr_text;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(nodes->stdout_text.find(absl::StrCat("\"", NodeId(i), "\"")), std::string::npos)
        << nodes->stdout_text;
  }

  // A request whose prefix is nowhere still routes (to some live node) with no match.
  v1::RouteResponse cold;
  ASSERT_TRUE(Route(ChainOf(99, 4), &cold).ok());
  EXPECT_EQ(cold.matched_blocks(), 0u);
}

TEST_F(RouterCluster, KilledNodeLeavesWithinTheTtlAndIsNeverChosenAfter) {
  ASSERT_NO_FATAL_FAILURE(StartRouter());
  ASSERT_NO_FATAL_FAILURE(StartNodes(3));
  ASSERT_TRUE(Eventually([&] { return AllSynced(3); }));
  const auto chain = ChainOf(2, 4);
  PutChain(0, chain);
  ASSERT_TRUE(RoutesTo(chain, NodeId(0), 4));

  const absl::Time killed = absl::Now();
  ASSERT_TRUE(nodes_[0]->Kill().ok());
  ASSERT_TRUE(Eventually([&] { return Nodes().nodes_size() == 2; })) << router_.stderr_text();
  std::cerr << "node removed " << absl::FormatDuration(absl::Now() - killed)
            << " after kill -9 (ttl " << kTtl << ")\n";
  for (int i = 0; i < 30; ++i) {
    v1::RouteResponse resp;
    ASSERT_TRUE(Route(chain, &resp).ok());
    EXPECT_NE(resp.node_id(), NodeId(0));
    EXPECT_EQ(resp.matched_blocks(), 0u);
  }
  EXPECT_NE(router_.stderr_text().find("node-0 missed heartbeats"), std::string::npos);
}

TEST_F(RouterCluster, RestartedRouterRebuildsItsIndexFromNodeSnapshots) {
  ASSERT_NO_FATAL_FAILURE(StartRouter());
  ASSERT_NO_FATAL_FAILURE(StartNodes(3));
  ASSERT_TRUE(Eventually([&] { return AllSynced(3); }));
  const auto chain = ChainOf(3, 6);
  PutChain(2, chain);
  ASSERT_TRUE(RoutesTo(chain, NodeId(2), 6));

  ASSERT_TRUE(router_.Kill().ok());
  ASSERT_NO_FATAL_FAILURE(
      StartRouter());  // same port: the nodes' heartbeats find a router that does not know them
  const absl::Time restarted = absl::Now();
  ASSERT_TRUE(RoutesTo(chain, NodeId(2), 6)) << router_.stderr_text();
  std::cerr << "index rebuilt " << absl::FormatDuration(absl::Now() - restarted)
            << " after the router restarted\n";
  EXPECT_TRUE(Eventually([&] { return AllSynced(3); }));
}

TEST_F(RouterCluster, RestartedNodeAnnouncesItsSsdBlocksUnderANewEpoch) {
  ASSERT_NO_FATAL_FAILURE(StartRouter());
  ASSERT_NO_FATAL_FAILURE(StartNodes(2));
  ASSERT_TRUE(Eventually([&] { return AllSynced(2); }));
  const auto chain = ChainOf(4, 4);
  PutChain(1, chain);
  ASSERT_TRUE(RoutesTo(chain, NodeId(1), 4));
  uint64_t epoch_before = 0;
  for (const auto& n : ListedNodes()) {
    if (n.node_id() == NodeId(1)) epoch_before = n.epoch();
  }
  // A clean stop persists the chain to SSD; the restarted node reports it from there.
  ASSERT_TRUE(nodes_[1]->Terminate().ok());
  auto addr = nodes_[1]->Start({"--data-dir", dirs_[1]->path(), "--dram-bytes", "64MiB",
                                "--ssd-bytes", "256MiB", "--router", router_addr_, "--node-id",
                                NodeId(1), "--heartbeat-interval", "200ms"});
  ASSERT_TRUE(addr.ok()) << addr.status();
  ASSERT_TRUE(Eventually([&] {
    for (const auto& n : ListedNodes()) {
      if (n.node_id() == NodeId(1)) {
        return n.epoch() > epoch_before && n.synced() && n.indexed_blocks() == 4;
      }
    }
    return false;
  })) << router_.stderr_text();
  // Only SSD holds the chain now. Whether loading it beats recomputing is the cost model's call
  // (at 1 GB/s it does not); either way the route names node-1 as holding all four blocks on SSD.
  v1::RouteResponse resp;
  ASSERT_TRUE(Route(chain, &resp).ok());
  if (resp.node_id() == NodeId(1)) {
    EXPECT_EQ(resp.matched().ssd(), 4u);
  } else {
    ASSERT_GE(resp.peers_size(), 1);
    EXPECT_EQ(resp.peers(0).node_id(), NodeId(1));
    EXPECT_EQ(resp.peers(0).blocks(), 4u);
    EXPECT_EQ(resp.peers(0).tier(), v1::TIER_SSD);
  }
}

TEST_F(RouterCluster, DrainingNodeGetsNoNewRequests) {
  ASSERT_NO_FATAL_FAILURE(StartRouter());
  ASSERT_NO_FATAL_FAILURE(StartNodes(2));
  ASSERT_TRUE(Eventually([&] { return AllSynced(2); }));
  const auto chain = ChainOf(5, 4);
  PutChain(0, chain);
  ASSERT_TRUE(RoutesTo(chain, NodeId(0), 4));
  // SIGTERM: the node announces draining before it stops serving.
  ASSERT_TRUE(nodes_[0]->Terminate().ok());
  ASSERT_TRUE(Eventually([&] {
    v1::RouteResponse resp;
    return Route(chain, &resp).ok() && resp.node_id() == NodeId(1);
  }));
  for (int i = 0; i < 10; ++i) {
    v1::RouteResponse resp;
    ASSERT_TRUE(Route(chain, &resp).ok());
    EXPECT_EQ(resp.node_id(), NodeId(1));
  }
}

TEST_F(RouterCluster, MalformedRequestsGetClearErrorsAndLeaveOtherNodesAlone) {
  ASSERT_NO_FATAL_FAILURE(StartRouter());
  ASSERT_NO_FATAL_FAILURE(StartNodes(2));
  ASSERT_TRUE(Eventually([&] { return AllSynced(2); }));
  const auto chain = ChainOf(6, 4);
  PutChain(1, chain);
  ASSERT_TRUE(RoutesTo(chain, NodeId(1), 4));

  v1::RouteRequest bad;
  bad.set_namespace_("default");
  bad.add_chain_hashes("short");
  v1::RouteResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub_->Route(&ctx, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("chain_hashes[0]"), std::string::npos) << s.error_message();

  // An event stream for a node nobody registered is refused.
  {
    grpc::ClientContext sctx;
    auto stream = stub_->PublishEvents(&sctx);
    v1::PublishRequest msg;
    msg.mutable_batch()->set_node_id("intruder");
    msg.mutable_batch()->set_epoch(1);
    msg.mutable_batch()->set_sequence(1);
    stream->Write(msg);
    stream->WritesDone();
    v1::PublishReply reply;
    while (stream->Read(&reply)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  // A batch that goes backwards in sequence, posing as node-0 with its real epoch, is rejected.
  uint64_t epoch0 = 0;
  for (const auto& n : ListedNodes()) {
    if (n.node_id() == NodeId(0)) epoch0 = n.epoch();
  }
  {
    grpc::ClientContext sctx;
    auto stream = stub_->PublishEvents(&sctx);
    v1::PublishRequest msg;
    msg.mutable_batch()->set_node_id(NodeId(0));
    msg.mutable_batch()->set_epoch(epoch0);
    msg.mutable_batch()->set_sequence(0);
    v1::BlockEvent* e = msg.mutable_batch()->add_events();
    e->set_kind(v1::BlockEvent::CLEARED);
    stream->Write(msg);
    v1::PublishRequest odd;
    odd.mutable_batch()->set_node_id(NodeId(0));
    odd.mutable_batch()->set_epoch(epoch0);
    odd.mutable_batch()->set_sequence(1);
    odd.mutable_batch()->add_events()->set_chain_hashes("not a multiple of 32");
    stream->Write(odd);
    stream->WritesDone();
    v1::PublishReply reply;
    int rejected = 0;
    while (stream->Read(&reply)) {
      if (reply.result() == v1::PublishReply::REJECTED) ++rejected;
    }
    stream->Finish();
    EXPECT_EQ(rejected, 2);
  }
  // Node 1's entries are untouched.
  ASSERT_TRUE(Route(chain, &resp).ok());
  EXPECT_EQ(resp.node_id(), NodeId(1));
  EXPECT_EQ(resp.matched_blocks(), 4u);
}

// vLLM adapter end to end: a publisher speaking vLLM's exact KV event wire format (ZMQ multipart,
// msgpack KVEventBatch), the router subscribed to it, and routes by token ids that find the
// engine's blocks, removals and a sequence gap included.
TEST_F(RouterCluster, VllmKvEventsAreIndexedAsTheEnginesHbm) {
  const int port = FreePort();
  const std::string endpoint = absl::StrCat("tcp://127.0.0.1:", port);
  ASSERT_NO_FATAL_FAILURE(StartRouter({"--vllm-events", endpoint + "=engine-0", "--vllm-namespace",
                                       "default", "--vllm-block-size", "16"}));
  auto published = RunProcess({"/usr/bin/python3",
                               STRATA_VLLM_PUBLISHER,
                               "--bind",
                               endpoint,
                               "--namespace",
                               "default",
                               "--block-size",
                               "16",
                               "--chains",
                               "3",
                               "--blocks-per-chain",
                               "4",
                               "--shared-prefix-blocks",
                               "2",
                               "--remove-chains",
                               "1",
                               "--gap-after",
                               "2",
                               "--gap-size",
                               "3"},
                              absl::Seconds(60));
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_EQ(published->exit_code, 0) << published->stderr_text;

  struct Expected {
    std::vector<uint32_t> tokens;
    uint32_t live_blocks = 0;
  };
  std::vector<Expected> chains;
  for (const std::string& line : Lines(published->stdout_text)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 3 || f[0] != "chain") continue;
    Expected e;
    ASSERT_TRUE(absl::SimpleAtoi(f[2], &e.live_blocks));
    for (size_t i = 3; i < f.size(); ++i) {
      uint32_t t;
      ASSERT_TRUE(absl::SimpleAtoi(f[i], &t));
      e.tokens.push_back(t);
    }
    chains.push_back(std::move(e));
  }
  ASSERT_EQ(chains.size(), 3u) << published->stdout_text;
  EXPECT_EQ(chains[2].live_blocks, 2u);  // its own blocks were removed; the shared prompt stays

  for (const Expected& e : chains) {
    ASSERT_TRUE(Eventually([&] {
      v1::RouteRequest req;
      req.set_namespace_("default");
      for (uint32_t t : e.tokens) req.add_token_ids(t);
      req.set_block_tokens(16);
      v1::RouteResponse resp;
      grpc::ClientContext ctx;
      return stub_->Route(&ctx, req, &resp).ok() && resp.node_id() == "engine-0" &&
             resp.matched_blocks() == e.live_blocks && resp.matched().hbm() == e.live_blocks;
    })) << router_.stderr_text();
  }
  EXPECT_NE(router_.stderr_text().find("sequence gap"), std::string::npos) << router_.stderr_text();
  bool listed = false;
  for (const auto& n : ListedNodes()) {
    if (n.node_id() == "engine-0") listed = n.source() == "vllm" && n.synced();
  }
  EXPECT_TRUE(listed);
}

TEST_F(RouterCluster, ExperimentSplitsLiveTrafficReportsFiguresAndDrainsOnSigterm) {
  ASSERT_NO_FATAL_FAILURE(StartRouter(
      {"--experiment", "locality=50,round_robin=50", "--metrics-listen", "127.0.0.1:0"}));
  ASSERT_NO_FATAL_FAILURE(StartNodes(2));
  ASSERT_TRUE(Eventually([&] { return AllSynced(2); }));
  const auto chain = ChainOf(7, 4);
  PutChain(0, chain);
  ASSERT_TRUE(RoutesTo(chain, NodeId(0), 4));
  std::string decision;
  for (int i = 0; i < 40; ++i) {
    auto cli = RunCli({"--router", router_addr_, "route", "--namespace", "default", "--hashes",
                       HexList(chain), "--block-tokens", "512", "--session",
                       absl::StrCat("user-", i), "--output", "json"});
    ASSERT_TRUE(cli.ok());
    ASSERT_EQ(cli->exit_code, 0) << cli->stderr_text;
    const size_t at = cli->stdout_text.find("\"decision_id\":\"");
    ASSERT_NE(at, std::string::npos) << cli->stdout_text;
    decision = cli->stdout_text.substr(at + 15, cli->stdout_text.find('"', at + 15) - at - 15);
  }
  auto outcome =
      RunCli({"--router", router_addr_, "report-outcome", "--decision-id", decision, "--ttft-ms",
              "12.5", "--prompt-tokens", "2048", "--cached-tokens", "1536"});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->exit_code, 0) << outcome->stderr_text;

  auto report = RunCli({"--router", router_addr_, "experiment", "report", "--output", "json"});
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->exit_code, 0) << report->stderr_text;
  EXPECT_NE(report->stdout_text.find("\"policy\":\"locality\""), std::string::npos);
  EXPECT_NE(report->stdout_text.find("\"policy\":\"round_robin\""), std::string::npos);
  EXPECT_NE(report->stdout_text.find("\"outcomes\":1"), std::string::npos) << report->stdout_text;

  const std::string log = router_.stderr_text();
  const std::string marker = "metrics on http://127.0.0.1:";
  const size_t at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  auto metrics = HttpGet(std::stoi(log.substr(at + marker.size())), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const std::string& line :
       {std::string("strata_router_decisions_total{policy=\"locality\"}"),
        std::string("strata_router_decisions_total{policy=\"round_robin\"}"),
        std::string("strata_router_shadow_hit_blocks_count{policy=\"round_robin\"}"),
        std::string("strata_router_reported_ttft_ms_count"),
        std::string("strata_router_reported_cached_tokens_total"),
        std::string("strata_router_nodes{state=\"registered\"} 2"),
        std::string("strata_router_index_entries")}) {
    EXPECT_NE(metrics->find(line), std::string::npos) << "missing: " << line << "\n" << *metrics;
  }

  auto code = router_.Terminate();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << router_.stderr_text();
  EXPECT_NE(router_.stderr_text().find("SIGTERM: draining"), std::string::npos);
}

// Parallel tests draw ports at random: a server whose port was taken in between is started again
// on another one, and a test never runs against a server that did not start.
TEST(RouterBinaryTest, StartOnFreePortDrawsAnotherPortWhenTheFirstIsTaken) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int taken = ntohs(addr.sin_port);

  NodeProcess router(RouterBinary());
  int tries = 0, port = 0;
  auto started = StartOnFreePort(
      router,
      [&](int p) -> std::vector<std::string> {
        // The first try gets the port this test holds, as if another test had drawn it first.
        const int use = tries++ == 0 ? taken : p;
        return {"--listen", absl::StrCat("127.0.0.1:", use)};
      },
      &port);
  close(fd);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(tries, 2);
  EXPECT_NE(port, taken);
  EXPECT_EQ(*started, absl::StrCat("127.0.0.1:", port));
  EXPECT_TRUE(IsPortTaken(absl::FailedPreconditionError(
      absl::StrCat("strata-router: cannot listen on 127.0.0.1:", taken))));
  EXPECT_FALSE(IsPortTaken(absl::FailedPreconditionError("strata-router: bad --policy")));
}

TEST(RouterBinaryTest, BadFlagsExit2WithOneLine) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--policy", "fastest"},
        std::vector<std::string>{"--experiment", "locality=50,round_robin=x"},
        std::vector<std::string>{"--node-ttl", "soon"},
        std::vector<std::string>{"--cost-model", "/nonexistent/cost.json"},
        std::vector<std::string>{"--vllm-events", "tcp://127.0.0.1:1"}}) {
    std::vector<std::string> argv = {RouterBinary()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto r = RunProcess(argv, absl::Seconds(30));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 2) << flags[0] << ": " << r->stderr_text;
    EXPECT_EQ(Lines(r->stderr_text).size(), 1u) << r->stderr_text;
  }
}

}  // namespace
}  // namespace strata::tests
