#include "clients/cli_commands.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "clients/fake_cache_node.h"
#include "clients/fake_router.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"

namespace strata::clients {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::strata::v1;

class CliCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("strata-cli-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    ClientOptions options;
    options.target = node_.address();
    client_ = std::move(CacheNodeClient::Connect(options)).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliArgs Args(CliCommand command) {
    CliArgs args;
    args.command = command;
    args.node = node_.address();
    args.namespace_name = "default";
    args.namespace_id = common::NamespaceIdOf("default");
    args.hashes = {hash_};
    return args;
  }

  CliOutcome Run(const CliArgs& args) {
    out_.str("");
    err_.str("");
    return RunCliCommand(args, *client_, out_, err_);
  }

  static std::string ReadFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  FakeCacheNode node_;
  std::unique_ptr<CacheNodeClient> client_;
  fs::path dir_;
  common::ChainHash hash_ = *common::ChainHash::FromHex(std::string(64, 'c'));
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CliCommandsTest, PutThenGetWritesTheFileAtomically) {
  const std::string payload(300 << 10, 'x');
  std::ofstream(dir_ / "in", std::ios::binary) << payload;
  CliArgs put = Args(CliCommand::kPut);
  put.file = dir_ / "in";
  CliOutcome r = Run(put);
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  EXPECT_NE(out_.str().find("stored " + hash_.Hex() + " in dram"), std::string::npos) << out_.str();

  CliArgs get = Args(CliCommand::kGet);
  get.out = dir_ / "out";
  get.output = OutputFormat::kJson;
  r = Run(get);
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  EXPECT_EQ(ReadFile(dir_ / "out"), payload);
  EXPECT_NE(out_.str().find(R"("tier":"dram","size":307200)"), std::string::npos) << out_.str();
  // Only the destination is left: no temporary file.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

TEST_F(CliCommandsTest, GetToStdoutWritesOnlyThePayload) {
  const std::string payload = "hello";
  std::ofstream(dir_ / "in", std::ios::binary) << payload;
  CliArgs put = Args(CliCommand::kPut);
  put.file = dir_ / "in";
  ASSERT_EQ(Run(put).exit_code, kExitOk);
  CliArgs get = Args(CliCommand::kGet);
  get.out = "-";
  get.output = OutputFormat::kJson;
  ASSERT_EQ(Run(get).exit_code, kExitOk);
  EXPECT_EQ(out_.str(), payload);
  EXPECT_NE(err_.str().find(R"("out":"-")"), std::string::npos);
}

TEST_F(CliCommandsTest, GetOfAnAbsentBlockExits3AndLeavesNoFile) {
  CliArgs get = Args(CliCommand::kGet);
  get.out = dir_ / "out";
  const CliOutcome r = Run(get);
  EXPECT_EQ(r.exit_code, kExitMiss);
  EXPECT_EQ(r.error, "get: not found: ns default hash " + hash_.Hex());
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(CliCommandsTest, CorruptTransferExits1AndLeavesNoFile) {
  std::ofstream(dir_ / "in", std::ios::binary) << std::string(1000, 'y');
  CliArgs put = Args(CliCommand::kPut);
  put.file = dir_ / "in";
  ASSERT_EQ(Run(put).exit_code, kExitOk);
  node_.CorruptPayloads(true);
  CliArgs get = Args(CliCommand::kGet);
  get.out = dir_ / "out";
  const CliOutcome r = Run(get);
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_EQ(r.error.rfind("get: DATA_LOSS: ", 0), 0u) << r.error;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(CliCommandsTest, MissingInputFileIsAUsageError) {
  CliArgs put = Args(CliCommand::kPut);
  put.file = dir_ / "missing";
  const CliOutcome r = Run(put);
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.error.find("No such file"), std::string::npos) << r.error;
  put.file = dir_;
  const CliOutcome dir = Run(put);
  EXPECT_EQ(dir.exit_code, kExitUsage);
  EXPECT_NE(dir.error.find("is a directory"), std::string::npos) << dir.error;
  EXPECT_EQ(node_.calls(), 0);
}

TEST_F(CliCommandsTest, RpcFailureExits1WithTheCodeName) {
  CliArgs lookup = Args(CliCommand::kLookup);
  lookup.namespace_id = common::NamespaceIdOf("unknown");
  const CliOutcome r = Run(lookup);
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_EQ(r.error, "lookup: FAILED_PRECONDITION: unknown namespace");
}

TEST_F(CliCommandsTest, SyncFailureExits1WithTheCodeName) {
  // The fake node implements no Sync, as a node older than the RPC would answer.
  const CliOutcome r = Run(Args(CliCommand::kSync));
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_TRUE(r.error.starts_with("sync: UNIMPLEMENTED")) << r.error;
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliCommandsTest, MultiLineMessagesBecomeOneLine) {
  node_.FailNextCalls(1, grpc::Status(grpc::INTERNAL, "first\nsecond"));
  const CliOutcome r = Run(Args(CliCommand::kStats));
  EXPECT_EQ(r.error, "stats: INTERNAL: first second");
}

class RouterCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = std::move(RouterClient::Connect(router_.address())).value();
    v1::NodeInfo node;
    node.set_node_id("node-a");
    node.set_endpoint("10.0.0.1:7070");
    node.mutable_load()->set_queued_requests(2);
    router_.SetNodes({node});
    v1::RouteResponse route;
    route.set_node_id("node-a");
    route.set_endpoint("10.0.0.1:7070");
    route.mutable_matched()->set_dram(1);
    route.set_matched_blocks(1);
    route.set_total_blocks(2);
    route.set_policy("locality");
    route.set_decision_id(77);
    router_.SetRouteResponse(route);
  }

  CliArgs Args(CliCommand command) {
    CliArgs args;
    args.command = command;
    args.router = router_.address();
    args.output = OutputFormat::kJson;
    return args;
  }

  CliOutcome Run(const CliArgs& args) {
    out_.str("");
    return RunRouterCommand(args, *client_, out_);
  }

  FakeRouter router_;
  std::unique_ptr<RouterClient> client_;
  std::ostringstream out_;
};

TEST_F(RouterCommandsTest, RouteSendsTheFlagsAndPrintsTheDecision) {
  CliArgs args = Args(CliCommand::kRoute);
  args.namespace_name = "llama/b16";
  args.hashes = {*common::ChainHash::FromHex(std::string(64, 'a')),
                 *common::ChainHash::FromHex(std::string(64, 'b'))};
  args.session_key = "s1";
  args.policy = "locality";
  args.block_tokens = 16;
  const CliOutcome r = Run(args);
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  const v1::RouteRequest sent = router_.last_route();
  EXPECT_EQ(sent.namespace_(), "llama/b16");
  ASSERT_EQ(sent.chain_hashes_size(), 2);
  EXPECT_EQ(sent.chain_hashes(1), std::string(32, '\xbb'));
  EXPECT_EQ(sent.session_key(), "s1");
  EXPECT_EQ(sent.policy(), "locality");
  EXPECT_EQ(sent.block_tokens(), 16u);
  EXPECT_EQ(out_.str().rfind(R"({"node":"node-a","endpoint":"10.0.0.1:7070",)"
                             R"("matched":{"hbm":0,"dram":1,"ssd":0},"matched_blocks":1,)"
                             R"("total_blocks":2,)",
                             0),
            0u)
      << out_.str();
  EXPECT_NE(out_.str().find(R"("policy":"locality","decision_id":"77",)"), std::string::npos)
      << out_.str();
}

TEST_F(RouterCommandsTest, RouteWithNoLiveNodeExits1WithUnavailable) {
  router_.SetNodes({});
  CliArgs args = Args(CliCommand::kRoute);
  args.namespace_name = "default";
  args.hashes = {*common::ChainHash::FromHex(std::string(64, 'a'))};
  const CliOutcome r = Run(args);
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_EQ(r.error, "route: UNAVAILABLE: no live node");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(RouterCommandsTest, NodesListsTheRoutersNodes) {
  const CliOutcome r = Run(Args(CliCommand::kNodes));
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  EXPECT_EQ(out_.str().rfind(R"({"nodes":[{"node":"node-a","endpoint":"10.0.0.1:7070",)", 0), 0u)
      << out_.str();
  EXPECT_NE(out_.str().find(R"("load":{"queued":2,"running":0,)"), std::string::npos) << out_.str();
}

TEST_F(RouterCommandsTest, ExperimentSetSendsTheSpecAndReportReadsIt) {
  CliArgs set = Args(CliCommand::kExperimentSet);
  set.experiment_spec = "locality=50,round_robin=50";
  CliOutcome r = Run(set);
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  EXPECT_EQ(router_.last_spec(), "locality=50,round_robin=50");
  EXPECT_EQ(out_.str(), R"({"spec":"locality=50,round_robin=50","requests":0,"policies":[]})"
                        "\n");
  CliArgs report = Args(CliCommand::kExperimentReport);
  report.output = OutputFormat::kText;
  r = Run(report);
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  EXPECT_EQ(out_.str().rfind("experiment locality=50,round_robin=50: 0 requests\n", 0), 0u)
      << out_.str();
}

TEST_F(RouterCommandsTest, ReportOutcomeSendsTheMeasurementAndAnUnknownDecisionExits1) {
  CliArgs args = Args(CliCommand::kReportOutcome);
  args.decision_id = 77;
  args.ttft_ms = 15.5;
  args.cached_tokens = 16;
  CliOutcome r = Run(args);
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  EXPECT_EQ(router_.last_outcome().ttft_ms(), 15.5);
  EXPECT_EQ(router_.last_outcome().cached_tokens(), 16u);
  EXPECT_NE(out_.str().find(R"("decision_id":"77","ttft_ms":15.5)"), std::string::npos)
      << out_.str();

  args.decision_id = 78;
  r = Run(args);
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_EQ(r.error, "report-outcome: NOT_FOUND: unknown decision id 78");
}

TEST_F(RouterCommandsTest, NodeCommandsAreRefusedByTheRouterRunner) {
  const CliOutcome r = Run(Args(CliCommand::kStats));
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_EQ(router_.calls(), 0);
}

TEST_F(RouterCommandsTest, LocateSendsTheChainAndPrintsTheHolders) {
  v1::LocateResponse located;
  located.set_total_blocks(2);
  v1::NodeHolding* holder = located.add_nodes();
  holder->set_node_id("node-a");
  holder->set_endpoint("10.0.0.1:7070");
  holder->set_matched_blocks(2);
  holder->mutable_tiers()->set_dram(2);
  router_.SetLocateResponse(located);
  CliArgs args = Args(CliCommand::kLocate);
  args.namespace_name = "llama/b16";
  args.token_ids = {1, 2, 3, 4};
  args.block_tokens = 2;
  const CliOutcome r = Run(args);
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  const v1::LocateRequest sent = router_.last_locate();
  EXPECT_EQ(sent.namespace_(), "llama/b16");
  EXPECT_EQ(sent.token_ids_size(), 4);
  EXPECT_EQ(sent.block_tokens(), 2u);
  EXPECT_EQ(sent.chain_hashes_size(), 0);
  EXPECT_EQ(out_.str(), R"({"total_blocks":2,"nodes":[{"node":"node-a","endpoint":"10.0.0.1:7070",)"
                        R"("matched_blocks":2,"matched":{"hbm":0,"dram":2,"ssd":0}}]})"
                        "\n");
  // Locate made no routing decision.
  EXPECT_EQ(router_.last_route().namespace_(), "");
}

TEST_F(RouterCommandsTest, RouteTakesTokensTheSameWayAsLocate) {
  CliArgs args = Args(CliCommand::kRoute);
  args.namespace_name = "default";
  args.token_ids = {7, 8, 9};
  args.block_tokens = 3;
  const CliOutcome r = Run(args);
  ASSERT_EQ(r.exit_code, kExitOk) << r.error;
  const v1::RouteRequest sent = router_.last_route();
  ASSERT_EQ(sent.token_ids_size(), 3);
  EXPECT_EQ(sent.token_ids(2), 9u);
  EXPECT_EQ(sent.block_tokens(), 3u);
}

}  // namespace
}  // namespace strata::clients
