#include "clients/cli_commands.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "clients/fake_cache_node.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"

namespace strata::clients {
namespace {

namespace fs = std::filesystem;

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

TEST_F(CliCommandsTest, MultiLineMessagesBecomeOneLine) {
  node_.FailNextCalls(1, grpc::Status(grpc::INTERNAL, "first\nsecond"));
  const CliOutcome r = Run(Args(CliCommand::kStats));
  EXPECT_EQ(r.error, "stats: INTERNAL: first second");
}

}  // namespace
}  // namespace strata::clients
