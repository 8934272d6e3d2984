// Process-level tests of the `strata` CLI against a real strata-cachenode: exit codes, the single
// stderr line on failure, byte-exact files and the shape of the output.
#include <fstream>
#include <iterator>
#include <random>

#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

std::string Hex64(char fill) { return std::string(64, fill); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

std::string Describe(const ProcessResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout: " + r.stdout_text +
         "\nstderr: " + r.stderr_text;
}

// The failure contract: exactly one line on stderr, starting with "strata: ".
void ExpectOneErrorLine(const ProcessResult& r, const std::string& fragment) {
  const std::vector<std::string> lines = Lines(r.stderr_text);
  ASSERT_EQ(lines.size(), 1u) << Describe(r);
  EXPECT_EQ(lines[0].rfind("strata: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(fragment), std::string::npos) << lines[0];
}

class CliProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> address = node_.Start(
        {"--dram-bytes", "64MiB", "--ssd-bytes", "256MiB", "--data-dir", dir_.File("data")});
    ASSERT_TRUE(address.ok()) << address.status();
    address_ = *address;
    std::mt19937 rng(7);
    payload_.resize((1 << 20) + 123);
    for (char& c : payload_) c = static_cast<char>(rng());
    std::ofstream(dir_.File("block.bin"), std::ios::binary) << payload_;
  }

  // Runs `strata --node <node> args...`.
  ProcessResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--node", address_, "--timeout", "60s"});
    absl::StatusOr<ProcessResult> r = RunCli(args);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ProcessResult{};
  }

  ProcessResult PutBlock(const std::string& hash) {
    return Cli({"put", "--namespace", "default", "--hash", hash, "--file", dir_.File("block.bin")});
  }

  TempDir dir_;
  NodeProcess node_;
  std::string address_;
  std::string payload_;
};

TEST_F(CliProcessTest, PutThenGetIsByteExact) {
  const ProcessResult put = PutBlock(Hex64('a'));
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  EXPECT_NE(put.stdout_text.find("stored " + Hex64('a') + " in dram"), std::string::npos)
      << put.stdout_text;

  const ProcessResult get =
      Cli({"get", "--namespace", "default", "--hash", Hex64('a'), "--out", dir_.File("out.bin")});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_TRUE(ReadFile(dir_.File("out.bin")) == payload_) << "the file differs from what was put";
  EXPECT_TRUE(get.stderr_text.empty()) << get.stderr_text;

  const ProcessResult json = Cli({"--output", "json", "get", "--namespace", "default", "--hash",
                                  Hex64('a'), "--out", dir_.File("out2.bin")});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  EXPECT_NE(json.stdout_text.find("\"hash\":\"" + Hex64('a') + "\""), std::string::npos);
  EXPECT_NE(json.stdout_text.find("\"tier\":\"dram\""), std::string::npos) << json.stdout_text;
  EXPECT_NE(json.stdout_text.find("\"size\":" + std::to_string(payload_.size())), std::string::npos)
      << json.stdout_text;
  EXPECT_NE(json.stdout_text.find("\"out\":\"" + dir_.File("out2.bin") + "\""), std::string::npos);
}

TEST_F(CliProcessTest, GetToStdoutWritesExactlyThePayload) {
  ASSERT_EQ(PutBlock(Hex64('b')).exit_code, 0);
  const ProcessResult get =
      Cli({"get", "--namespace", "default", "--hash", Hex64('b'), "--out", "-"});
  ASSERT_EQ(get.exit_code, 0) << get.stderr_text;
  EXPECT_TRUE(get.stdout_text == payload_);
}

TEST_F(CliProcessTest, GetOfAnAbsentHashExits3AndWritesNothing) {
  const ProcessResult get = Cli(
      {"get", "--namespace", "default", "--hash", Hex64('c'), "--out", dir_.File("absent.bin")});
  EXPECT_EQ(get.exit_code, 3) << Describe(get);
  ExpectOneErrorLine(get, "get: not found: ns default hash " + Hex64('c'));
  EXPECT_FALSE(Exists(dir_.File("absent.bin")));
}

TEST_F(CliProcessTest, MalformedHashExits2WithOneLine) {
  const ProcessResult get =
      Cli({"get", "--namespace", "default", "--hash", "0123abc", "--out", dir_.File("x.bin")});
  EXPECT_EQ(get.exit_code, 2) << Describe(get);
  ExpectOneErrorLine(get, "64 hex characters");
  const ProcessResult lookup =
      Cli({"lookup", "--namespace", "default", "--hashes", Hex64('a') + "," + Hex64('z')});
  EXPECT_EQ(lookup.exit_code, 2) << Describe(lookup);
  ExpectOneErrorLine(lookup, "entry 2");
}

TEST_F(CliProcessTest, UsageErrorsExit2WithOneLine) {
  const ProcessResult missing_file =
      Cli({"put", "--namespace", "default", "--hash", Hex64('a'), "--file", dir_.File("nope")});
  EXPECT_EQ(missing_file.exit_code, 2) << Describe(missing_file);
  ExpectOneErrorLine(missing_file, "nope");
  const ProcessResult bad_namespace =
      Cli({"get", "--namespace", "bad namespace", "--hash", Hex64('a'), "--out", "-"});
  EXPECT_EQ(bad_namespace.exit_code, 2) << Describe(bad_namespace);
  ExpectOneErrorLine(bad_namespace, "--namespace");
  const ProcessResult unknown_flag = Cli({"stats", "--colour"});
  EXPECT_EQ(unknown_flag.exit_code, 2) << Describe(unknown_flag);
  ExpectOneErrorLine(unknown_flag, "--colour");
}

TEST_F(CliProcessTest, StatsJsonListsTheTiers) {
  ASSERT_EQ(PutBlock(Hex64('d')).exit_code, 0);
  const ProcessResult stats = Cli({"stats", "--output", "json"});
  ASSERT_EQ(stats.exit_code, 0) << Describe(stats);
  const std::string& out = stats.stdout_text;
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front(), '{') << out;
  EXPECT_EQ(out.substr(out.size() - 2), "}\n") << out;
  EXPECT_NE(out.find("\"tiers\":[{"), std::string::npos) << out;
  EXPECT_NE(out.find("\"tier\":\"dram\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"tier\":\"ssd\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"blocks\":1"), std::string::npos) << out;
  EXPECT_NE(out.find("\"misses\":"), std::string::npos) << out;
}

TEST_F(CliProcessTest, StatsTextIsATable) {
  const ProcessResult stats = Cli({"stats"});
  ASSERT_EQ(stats.exit_code, 0) << Describe(stats);
  EXPECT_NE(stats.stdout_text.find("TIER"), std::string::npos) << stats.stdout_text;
  EXPECT_NE(stats.stdout_text.find("dram"), std::string::npos) << stats.stdout_text;
  EXPECT_NE(stats.stdout_text.find("/ 64.0 MiB"), std::string::npos) << stats.stdout_text;
  EXPECT_NE(stats.stdout_text.find("misses: "), std::string::npos) << stats.stdout_text;
}

TEST_F(CliProcessTest, LookupReportsTheMatchedPrefix) {
  ASSERT_EQ(PutBlock(Hex64('e')).exit_code, 0);
  const std::string hashes = Hex64('e') + "," + Hex64('f');
  const ProcessResult text = Cli({"lookup", "--namespace", "default", "--hashes", hashes});
  ASSERT_EQ(text.exit_code, 0) << Describe(text);
  EXPECT_NE(text.stdout_text.find("matched 1 of 2 blocks"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find(Hex64('e') + "  dram"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find(Hex64('f') + "  absent"), std::string::npos) << text.stdout_text;

  const ProcessResult json =
      Cli({"lookup", "--namespace", "default", "--hashes", hashes, "--output", "json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  EXPECT_NE(json.stdout_text.find("\"matched_blocks\":1,"), std::string::npos) << json.stdout_text;
  EXPECT_NE(json.stdout_text.find("\"tiers\":[\"dram\"]"), std::string::npos) << json.stdout_text;
}

TEST_F(CliProcessTest, DeleteRemovesTheBlock) {
  ASSERT_EQ(PutBlock(Hex64('1')).exit_code, 0);
  const ProcessResult del = Cli({"delete", "--namespace", "default", "--hash", Hex64('1')});
  ASSERT_EQ(del.exit_code, 0) << Describe(del);
  EXPECT_NE(del.stdout_text.find("deleted 1 of 1 blocks"), std::string::npos) << del.stdout_text;
  const ProcessResult get =
      Cli({"get", "--namespace", "default", "--hash", Hex64('1'), "--out", "-"});
  EXPECT_EQ(get.exit_code, 3) << Describe(get);
}

TEST_F(CliProcessTest, RegisteredNamespaceTakesBlocks) {
  const ProcessResult reg = Cli({"register-namespace", "--namespace", "cli/test-ns"});
  ASSERT_EQ(reg.exit_code, 0) << Describe(reg);
  EXPECT_NE(reg.stdout_text.find("registered namespace cli/test-ns"), std::string::npos)
      << reg.stdout_text;
  const ProcessResult list = Cli({"namespaces", "--output", "json"});
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  EXPECT_NE(list.stdout_text.find("\"name\":\"cli/test-ns\""), std::string::npos)
      << list.stdout_text;
  EXPECT_NE(list.stdout_text.find("\"name\":\"default\""), std::string::npos) << list.stdout_text;
  const ProcessResult put = Cli({"put", "--namespace", "cli/test-ns", "--hash", Hex64('2'),
                                 "--file", dir_.File("block.bin"), "--from-gpu"});
  EXPECT_EQ(put.exit_code, 0) << Describe(put);
}

TEST_F(CliProcessTest, UnknownNamespaceExits1WithTheCodeName) {
  const ProcessResult put = Cli({"put", "--namespace", "never-registered", "--hash", Hex64('3'),
                                 "--file", dir_.File("block.bin")});
  EXPECT_EQ(put.exit_code, 1) << Describe(put);
  ExpectOneErrorLine(put, "put: FAILED_PRECONDITION: ");
}

TEST_F(CliProcessTest, UnreachableNodeExits1WithUnavailable) {
  ASSERT_TRUE(node_.Terminate().ok());
  const ProcessResult stats = Cli({"stats"});
  EXPECT_EQ(stats.exit_code, 1) << Describe(stats);
  ExpectOneErrorLine(stats, "stats: UNAVAILABLE: ");
}

TEST(CliHelpTest, HelpPrintsUsageAndExits0) {
  absl::StatusOr<ProcessResult> help = RunCli({"--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ(help->exit_code, 0);
  EXPECT_NE(help->stdout_text.find("Usage:"), std::string::npos) << help->stdout_text;
  EXPECT_NE(help->stdout_text.find("register-namespace"), std::string::npos);
  EXPECT_TRUE(help->stderr_text.empty()) << help->stderr_text;
}

}  // namespace
}  // namespace strata::tests
